"""The edge container as the chart renders it (its ConfigMap, its arguments, its environment) starts a real edge
that serves a pull from the bucket; the kubelet's part (mounts, Secrets) is played by the test."""

from __future__ import annotations

import os
import sys

import httpx

from tests.deploy.conftest import REPO, find, render
from tests.support.ports import free_port
from tests.support.processes import Server


def test_the_rendered_edge_container_serves_a_pull(seaweed, pulled_edge, tmp_path):
    _, image = pulled_edge
    port = free_port()
    values = {"port": port, "config": {"storage": {"s3": {"regionendpoint": seaweed.endpoint, "bucket": "registry"}}}}
    objects = render(values)
    config_dir = tmp_path / "etc-edge-mirror"  # the ConfigMap volume
    config_dir.mkdir()
    (config_dir / "mirror.toml").write_text(find(objects, "ConfigMap", "edge-edge-mirror")["data"]["mirror.toml"])
    edge = find(objects, "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]["containers"][0]
    secrets = {"accesskey": "x", "secretkey": "y"}  # the Secret the chart renders from s3Credentials
    env = {item["name"]: item.get("value") or secrets[item["valueFrom"]["secretKeyRef"]["key"]]
           for item in edge["env"] if "fieldRef" not in item.get("valueFrom", {})}
    args = [arg.replace("/etc/edge-mirror", str(config_dir)) for arg in edge["args"]]
    env["MIRROR_CACHE_DIR"] = str(tmp_path / "cache")  # the cache volume's mount point
    env["MIRROR_HTTP_ADDR"] = f"127.0.0.1:{port}"  # loopback only in tests; the pod binds 0.0.0.0
    server = Server([sys.executable, "-m", "mirror", *args], tmp_path / "edge.log",
                    env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    try:
        probe = edge["readinessProbe"]["httpGet"]["path"]
        server.wait_http(f"http://127.0.0.1:{port}{probe}", timeout=30)
        manifest = httpx.get(f"http://127.0.0.1:{port}/v2/deploy/app/manifests/v1",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert manifest.status_code == 200
        assert manifest.headers["docker-content-digest"] == image.manifest_digest
        blob = httpx.get(f"http://127.0.0.1:{port}/v2/deploy/app/blobs/{image.layer_digests[0]}")
        assert blob.status_code == 200 and len(blob.content) > 0
    finally:
        server.stop()
    assert '"route":"blob"' in (tmp_path / "edge.log").read_text()  # the chart's JSON access log
