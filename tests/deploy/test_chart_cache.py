"""Where the cache lives and who sees it (issue 21, item 8): rendered by real Helm, checked against the Kubernetes
schemas, the edge's own config loader, and the uninstall hook's purge run on a scratch node directory."""

from __future__ import annotations

import subprocess
import sys

import kubernetes_validate

from mirror import config as mirror_config
from tests.deploy.conftest import edge_environ, find, render

DAEMONSET = "edge-edge-mirror"


def pod_spec(objects):
    return find(objects, "DaemonSet", DAEMONSET)["spec"]["template"]["spec"]


def cache_volume(objects):
    return next(volume for volume in pod_spec(objects)["volumes"] if volume["name"] == "cache")


def test_by_default_the_cache_is_an_empty_dir_the_kubelet_counts_and_the_edge_stays_under(tmp_path):
    objects = render()
    assert cache_volume(objects) == {"name": "cache", "emptyDir": {"sizeLimit": "50Gi"}}
    assert not any("hostPath" in volume for volume in pod_spec(objects)["volumes"] if volume["name"] == "cache")
    (tmp_path / "mirror.toml").write_text(find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"])
    settings = mirror_config.load(tmp_path / "mirror.toml", environ=edge_environ(objects))
    assert settings.cache.size <= 50 * 1024**3 * 0.9  # the edge evicts before the kubelet's sizeLimit would
    assert "cache-owner" not in [container["name"] for container in pod_spec(objects)["initContainers"]]


def test_an_ephemeral_cache_is_a_claim_per_pod_of_the_chosen_class():
    objects = render({"cache": {"type": "ephemeral", "storageClassName": "local-nvme", "sizeGiB": 100}})
    claim = cache_volume(objects)["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim == {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-nvme",
                     "resources": {"requests": {"storage": "100Gi"}}}
    kubernetes_validate.validate(find(objects, "DaemonSet", DAEMONSET), "1.30", strict=True)
    assert pod_spec(objects)["initContainers"][0]["name"] == "cache-owner"  # a new volume is root-owned


def test_a_host_path_cache_is_kept_on_uninstall_unless_asked():
    objects = render({"cache": {"type": "hostPath"}})
    hook = find(objects, "DaemonSet", "edge-edge-mirror-restore")["spec"]["template"]["spec"]
    assert "purge-cache" not in [container["name"] for container in hook["initContainers"]]


def test_delete_on_uninstall_removes_the_host_path_cache_on_every_node_and_nothing_beside_it(tmp_path):
    objects = render({"cache": {"type": "hostPath", "hostPath": "/var/lib/edge-mirror/cache", "deleteOnUninstall": True},
                      "nodeConfig": {"enabled": False}})
    hook = find(objects, "DaemonSet", "edge-edge-mirror-restore")
    kubernetes_validate.validate(hook, "1.30", strict=True)
    spec = hook["spec"]["template"]["spec"]
    purge = spec["initContainers"][0]
    assert [container["name"] for container in spec["initContainers"]] == ["purge-cache"]
    parent = next(volume for volume in spec["volumes"] if volume["name"] == "host-cache-parent")
    assert parent["hostPath"]["path"] == "/var/lib/edge-mirror"
    # Run the rendered command on a scratch node directory mounted where the hook mounts it.
    node = tmp_path / "var-lib-edge-mirror"
    (node / "cache/blobs").mkdir(parents=True)
    (node / "cache/blobs/sha256-aa").write_bytes(b"layer")
    (node / "other").mkdir()
    command = [sys.executable if arg == "python3" else arg.replace("/host-cache-parent", str(node))
               for arg in purge["command"]]
    subprocess.run(command, check=True, timeout=30)
    assert sorted(path.name for path in node.iterdir()) == ["other"]
