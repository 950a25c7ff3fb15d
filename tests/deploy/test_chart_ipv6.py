"""IPv6-only and dual-stack clusters (issue 21, item 6): the addresses the chart renders, read by the edge's own
config loader and node-config.py, and a rendered `[::]` bind serving both families in a network namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest

from mirror import config as mirror_config
from tests.deploy.conftest import REPO, find, render
from tests.deploy.test_node_config import run
from tests.support.ports import free_port

DAEMONSET = "edge-edge-mirror"


def kubelet_env(objects, node_ip: str, pod_ip: str) -> dict[str, str]:
    """The edge container's MIRROR_* variables with $(NODE_IP) / $(POD_IP) expanded as the kubelet does."""
    edge = find(objects, "DaemonSet", DAEMONSET)["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item["value"].replace("$(NODE_IP)", node_ip).replace("$(POD_IP)", pod_ip)
            for item in edge["env"] if "value" in item and item["name"].startswith("MIRROR_")}


@pytest.mark.parametrize(("node_ip", "host"), [("fd00::7", "fd00::7"), ("10.0.0.7", "10.0.0.7")])
def test_host_network_binds_the_node_ip_of_either_family(tmp_path, node_ip, host):
    objects = render({"hostNetwork": True, "peers": {"enabled": True, "secret": "s" * 20}})
    (tmp_path / "mirror.toml").write_text(find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"])
    env = {**kubelet_env(objects, node_ip, node_ip), "MIRROR_STORAGE_S3_ACCESSKEY": "a", "MIRROR_STORAGE_S3_SECRETKEY": "b",
           "MIRROR_PEERS_SECRET": "s" * 20}
    settings = mirror_config.load(tmp_path / "mirror.toml", environ=env)
    assert (settings.http.host, settings.http.port) == (host, 5000)
    assert settings.http.metrics_addr == (host, 5001)
    assert settings.peers.self_address == (f"[{host}]:5000" if ":" in host else f"{host}:5000")


@pytest.mark.parametrize(("node_ip", "url"), [("fd00::7", "http://[fd00::7]:5000"), ("10.0.0.7", "http://10.0.0.7:5000")])
def test_the_node_config_writes_a_bracketed_ipv6_edge_url(tmp_path, node_ip, url):
    result = run("write", "--certs-dir", tmp_path, "--edge", f"http://{node_ip}:5000", "--registry", "docker.io")
    assert result.returncode == 0, result.stderr
    assert list(tomllib.loads((tmp_path / "docker.io/hosts.toml").read_text())["host"]) == [url]


@pytest.mark.parametrize("family", ["IPv6", "DualStack"])
def test_an_ipv6_family_binds_every_address_of_both_families(tmp_path, family):
    toml = find(render({"ipFamily": family}), "ConfigMap", DAEMONSET)["data"]["mirror.toml"]
    assert tomllib.loads(toml)["http"]["addr"] == "[::]:5000"


# Run inside a network namespace of its own (only `lo`): start the edge on the rendered [::] address, then ask
# /healthz over IPv4 and IPv6 loopback.
PROBE = """
import json, subprocess, sys, time, urllib.request
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
edge = subprocess.Popen([sys.executable, "-m", "mirror", "serve", "--config", sys.argv[1]],
                        stdout=subprocess.DEVNULL, stderr=open(sys.argv[3], "w"))
answers = {}
try:
    for address in ("127.0.0.1", "[::1]"):
        for attempt in range(300):
            try:
                answers[address] = urllib.request.urlopen(f"http://{address}:{sys.argv[2]}/healthz", timeout=2).status
                break
            except OSError as error:
                answers[address] = str(error)
                if edge.poll() is not None:
                    break
                time.sleep(0.1)
finally:
    edge.terminate()
    edge.wait(timeout=20)
print(json.dumps(answers))
"""


def test_the_rendered_ipv6_bind_serves_ipv4_and_ipv6_clients(tmp_path):
    port = free_port()
    toml = find(render({"ipFamily": "DualStack", "port": port, "metricsPort": free_port()}), "ConfigMap",
                DAEMONSET)["data"]["mirror.toml"]
    document = tomllib.loads(toml)
    assert document["http"]["addr"] == f"[::]:{port}"
    config = tmp_path / "mirror.toml"
    # The chart's edge with a local filesystem store (no bucket in the namespace); the address is what is tested.
    config.write_text(toml.replace('driver = "s3"', 'driver = "filesystem"') + "\n[storage.filesystem]\nrootdirectory = "
                      + json.dumps(str(tmp_path / "data")) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MIRROR_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(["unshare", "--net", sys.executable, "-c", PROBE, str(config), str(port),
                             str(tmp_path / "edge.log")], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr + (tmp_path / "edge.log").read_text()
    assert json.loads(result.stdout) == {"127.0.0.1": 200, "[::1]": 200}, (tmp_path / "edge.log").read_text()
