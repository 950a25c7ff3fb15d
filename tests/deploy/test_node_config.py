"""The chart's node-config script (the init container and the post-delete hook), run on a temporary node root."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.conftest import CHART, REPO, find, render
from tests.support import examples

SCRIPT = CHART / "files" / "node-config.py"
ORIGINAL = 'server = "https://mirror.corp.example"\n\n[host."https://cache.corp.example"]\n  capabilities = ["pull"]\n'


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=30)


def write(certs: Path, *args: str) -> None:
    result = run("write", "--certs-dir", certs, "--edge", "http://192.0.2.10:5000", *args)
    assert result.returncode == 0, result.stderr


def test_the_edge_comes_first_and_the_registry_is_the_fallback(tmp_path):
    write(tmp_path, "--registry", "docker.io", "--registry", "registry.example.com")
    hub = tomllib.loads((tmp_path / "docker.io/hosts.toml").read_text())
    assert hub["server"] == "https://registry-1.docker.io"
    assert list(hub["host"]) == ["http://192.0.2.10:5000"]
    assert hub["host"]["http://192.0.2.10:5000"] == {"capabilities": ["pull", "resolve"], "dial_timeout": "200ms"}
    assert tomllib.loads((tmp_path / "registry.example.com/hosts.toml").read_text())["server"] == "https://registry.example.com"


def test_the_example_hosts_toml_is_what_the_script_writes(tmp_path):
    write(tmp_path, "--registry", "registry.example.com")
    assert (tmp_path / "registry.example.com/hosts.toml").read_text() == (examples.EXAMPLES / "hosts.toml").read_text()


def test_prepend_existing_keeps_the_nodes_hosts_after_the_edge_and_restore_puts_the_file_back(tmp_path):
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io/hosts.toml").write_text(ORIGINAL)
    write(tmp_path, "--registry", "docker.io", "--prepend-existing")
    write(tmp_path, "--registry", "docker.io", "--prepend-existing")  # a restarted pod runs it again
    written = tomllib.loads((tmp_path / "docker.io/hosts.toml").read_text())
    assert list(written["host"]) == ["http://192.0.2.10:5000", "https://cache.corp.example"]
    assert written["server"] == "https://mirror.corp.example"
    assert run("restore", "--certs-dir", tmp_path, "--registry", "docker.io").returncode == 0
    assert (tmp_path / "docker.io/hosts.toml").read_text() == ORIGINAL
    assert sorted(path.name for path in (tmp_path / "docker.io").iterdir()) == ["hosts.toml"]


def test_without_prepend_existing_the_old_hosts_are_dropped_but_still_restored(tmp_path):
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io/hosts.toml").write_text(ORIGINAL)
    write(tmp_path, "--registry", "docker.io")
    assert list(tomllib.loads((tmp_path / "docker.io/hosts.toml").read_text())["host"]) == ["http://192.0.2.10:5000"]
    run("restore", "--certs-dir", tmp_path, "--registry", "docker.io")
    assert (tmp_path / "docker.io/hosts.toml").read_text() == ORIGINAL


def test_restore_removes_what_the_script_created(tmp_path):
    write(tmp_path, "--registry", "registry.example.com")
    (tmp_path / "other.example").mkdir()
    assert run("restore", "--certs-dir", tmp_path, "--registry", "registry.example.com").returncode == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.example"]


def test_the_authorization_header_goes_to_the_edge_only(tmp_path):
    (tmp_path / "authorization").write_text("Basic ZWRnZTpzZWNyZXQ=\n")
    certs = tmp_path / "certs.d"
    write(certs, "--registry", "registry.example.com", "--authorization-file", str(tmp_path / "authorization"))
    hosts = tomllib.loads((certs / "registry.example.com/hosts.toml").read_text())["host"]
    assert hosts["http://192.0.2.10:5000"]["header"] == {"Authorization": ["Basic ZWRnZTpzZWNyZXQ="]}


@pytest.mark.parametrize(
    ("config", "certs_dir"),
    [
        ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n',
         "etc/containerd/certs.d"),
        ('version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"\n',
         "etc/containerd/certs.d"),
    ],
    ids=["containerd-1.x", "containerd-2.x-first-of-a-list"],
)
def test_the_certs_dir_is_detected_from_containerds_config(tmp_path, config, certs_dir):
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text(config)
    result = run("write", "--host-root", tmp_path, "--edge", "http://192.0.2.10:5000", "--registry", "docker.io")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / certs_dir / "docker.io/hosts.toml").exists()


def test_a_containerd_without_config_path_is_refused_with_the_fix(tmp_path):
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text("version = 2\n")
    result = run("write", "--host-root", tmp_path, "--edge", "http://192.0.2.10:5000", "--registry", "docker.io")
    assert result.returncode == 2
    assert "config_path" in result.stderr and "--certs-dir" in result.stderr
    assert not (tmp_path / "etc/containerd/certs.d").exists()


def test_the_rendered_init_container_writes_the_example_hosts_toml(tmp_path):
    """Run the script from the rendered ConfigMap with the rendered init container's arguments, on a node root."""
    objects = render()
    script = tmp_path / "node-config.py"
    for name, text in find(objects, "ConfigMap", "edge-edge-mirror")["data"].items():
        if name.endswith(".py"):  # node-config.py and the modules beside it, as the ConfigMap volume has them
            (tmp_path / name).write_text(text)
    pod = find(objects, "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]
    init = next(container for container in pod["initContainers"] if container["name"] == "node-config")
    host_root = tmp_path / "host"
    (host_root / "etc/containerd").mkdir(parents=True)
    (host_root / "etc/containerd/config.toml").write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
    )
    # The kubelet expands $(NODE_IP); the node's / is mounted at /host.
    arguments = [{"/host": str(host_root)}.get(arg, arg).replace("$(NODE_IP)", "192.0.2.10") for arg in init["args"]]
    result = subprocess.run([sys.executable, str(script), *init["command"][2:], *arguments],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    certs = host_root / "etc/containerd/certs.d"
    assert sorted(path.name for path in certs.iterdir()) == ["docker.io", "registry.example.com"]
    assert (certs / "registry.example.com/hosts.toml").read_text() == (REPO / "deploy/examples/hosts.toml").read_text()


def test_a_hosts_toml_holding_a_credential_is_readable_by_its_owner_only(tmp_path):
    (tmp_path / "authorization").write_text("Basic ZWRnZTpzZWNyZXQ=\n")
    certs = tmp_path / "certs.d"
    write(certs, "--registry", "registry.example.com", "--authorization-file", str(tmp_path / "authorization"))
    write(tmp_path / "plain", "--registry", "docker.io")
    assert (certs / "registry.example.com/hosts.toml").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "plain/docker.io/hosts.toml").stat().st_mode & 0o777 == 0o644


# A registry behind a private CA with mTLS and a header, and a cache host with its own CA: containerd 1.6-2.x keys.
PRIVATE = '''server = "https://registry.corp.example"
ca = "/etc/containerd/certs.d/registry.corp.example/ca.crt"
client = [["/etc/certs/client.crt", "/etc/certs/client.key"]]
skip_verify = false
capabilities = ["pull", "resolve", "push"]

[header]
  X-Tenant = ["team-a"]

[host."https://cache.corp.example"]
  capabilities = ["pull"]
  ca = ["/etc/certs/cache-ca.crt"]
  [host."https://cache.corp.example".header]
    X-Cache = ["1"]
'''


def test_prepend_existing_keeps_the_registrys_own_tls_client_and_header_settings(tmp_path):
    (tmp_path / "registry.corp.example").mkdir()
    (tmp_path / "registry.corp.example/hosts.toml").write_text(PRIVATE)
    write(tmp_path, "--registry", "registry.corp.example", "--prepend-existing")
    written = tomllib.loads((tmp_path / "registry.corp.example/hosts.toml").read_text())
    original = tomllib.loads(PRIVATE)
    assert list(written["host"]) == ["http://192.0.2.10:5000", "https://cache.corp.example"]
    assert written["host"]["https://cache.corp.example"] == original["host"]["https://cache.corp.example"]
    assert {key: value for key, value in written.items() if key != "host"} == \
        {key: value for key, value in original.items() if key != "host"}
    assert (tmp_path / "registry.corp.example/hosts.toml").stat().st_mode & 0o777 == 0o600  # it carries headers
    assert run("restore", "--certs-dir", tmp_path, "--registry", "registry.corp.example").returncode == 0
    assert (tmp_path / "registry.corp.example/hosts.toml").read_text() == PRIVATE


V2_ROOT = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'


@pytest.mark.parametrize(
    ("files", "certs_dir"),
    [
        # containerd 1.6-style version 1 (no `version` key): the short plugin name.
        ({"config.toml": '[plugins.cri.registry]\n  config_path = "/etc/containerd/v1.d"\n'}, "v1.d"),
        # containerd 1.7-style: the root only imports drop-ins (a glob), one of which configures the registry.
        ({"config.toml": 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n',
          "conf.d/10-runtime.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n',
          "conf.d/20-registry.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/dropin.d"\n'},
         "dropin.d"),
        # A relative import, and a later drop-in's CRI table replacing the root's whole (containerd 1.x merge).
        ({"config.toml": V2_ROOT.replace("version = 2\n", 'version = 2\nimports = ["extra/registry.toml"]\n'),
          "extra/registry.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/relative.d"\n'},
         "relative.d"),
        # containerd 2.x: version 3, the images plugin, the first directory of a list.
        ({"config.toml": 'version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/v3.d:/etc/docker/certs.d"\n'},
         "v3.d"),
        # containerd 2.x with a version 3 file that leaves config_path unset: its built-in default.
        ({"config.toml": 'version = 3\n[plugins."io.containerd.cri.v1.images"]\n  use_local_image_pull = true\n'}, "certs.d"),
        # No file at all (containerd 2.x runs on its defaults).
        ({}, "certs.d"),
    ],
    ids=["v1-containerd-1.6", "imports-glob-containerd-1.7", "relative-import-replaces-root", "v3-containerd-2.x",
         "v3-default", "no-file"],
)
def test_the_certs_dir_is_found_in_every_containerd_config_shape(tmp_path, files, certs_dir):
    for name, text in files.items():
        (tmp_path / "etc/containerd" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "etc/containerd" / name).write_text(text)
    result = run("write", "--host-root", tmp_path, "--edge", "http://192.0.2.10:5000", "--registry", "docker.io")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc/containerd" / certs_dir / "docker.io/hosts.toml").exists()


def test_a_per_node_override_file_names_the_certs_dir(tmp_path):
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text("version = 2\n")  # would be refused without the override
    (tmp_path / "etc/containerd/edge-mirror-certs-dir").write_text("/etc/containerd/node.d\n")
    result = run("write", "--host-root", tmp_path, "--edge", "http://192.0.2.10:5000", "--registry", "docker.io")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc/containerd/node.d/docker.io/hosts.toml").exists()


def test_an_undetectable_node_is_left_alone_with_the_reason_when_asked_to_skip(tmp_path):
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text("version = 2\n")  # containerd 1.x without config_path
    result = run("write", "--host-root", tmp_path, "--edge", "http://192.0.2.10:5000", "--registry", "docker.io",
                 "--skip-undetected")
    assert result.returncode == 0, result.stderr
    assert "config_path" in result.stdout and "left as it was" in result.stdout
    assert sorted(path.name for path in (tmp_path / "etc/containerd").iterdir()) == ["config.toml"]


def test_the_chart_skips_undetectable_nodes_by_default_so_the_rollout_goes_on():
    def init_args(values=None):
        pod = find(render(values), "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]
        return next(container for container in pod["initContainers"] if container["name"] == "node-config")["args"]
    assert "--skip-undetected" in init_args()
    assert "--skip-undetected" not in init_args({"nodeConfig": {"whenUndetected": "fail"}})
