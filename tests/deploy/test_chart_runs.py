"""The edge container as the chart renders it (its ConfigMap, its arguments, its environment) starts a real edge
that serves a pull from the bucket; the kubelet's part (mounts, Secrets) is played by the test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from tests.deploy.conftest import REPO, edge_environ, find, render
from tests.support.ports import free_port
from tests.support.processes import Server


def start_rendered_edge(values: dict, port: int, tmp_path: Path) -> tuple[Server, dict]:
    """The edge container of the chart rendered with `values`: its ConfigMap, arguments and environment (Secrets read
    from the rendered ones), on loopback `port`."""
    objects = render({"port": port, **values})
    config_dir = tmp_path / "etc-edge-mirror"  # the ConfigMap volume
    config_dir.mkdir()
    (config_dir / "mirror.toml").write_text(find(objects, "ConfigMap", "edge-edge-mirror")["data"]["mirror.toml"])
    edge = find(objects, "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]["containers"][0]
    env = edge_environ(objects)
    args = [arg.replace("/etc/edge-mirror", str(config_dir)) for arg in edge["args"]]
    env["MIRROR_CACHE_DIR"] = str(tmp_path / "cache")  # the cache volume's mount point
    env["MIRROR_HTTP_ADDR"] = f"127.0.0.1:{port}"  # loopback only in tests; the pod binds 0.0.0.0
    env["MIRROR_HTTP_METRICS_ADDR"] = f"127.0.0.1:{free_port()}"
    server = Server([sys.executable, "-m", "mirror", *args], tmp_path / "edge.log",
                    env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    try:
        server.wait_http(f"http://127.0.0.1:{port}{edge['readinessProbe']['httpGet']['path']}", timeout=30)
    except BaseException:
        server.stop()
        raise
    return server, edge


def test_the_rendered_edge_container_serves_a_pull(seaweed, pulled_edge, tmp_path):
    _, image = pulled_edge
    port = free_port()
    storage = {"storage": {"s3": {"regionendpoint": seaweed.endpoint, "bucket": "registry"}}}
    server, _ = start_rendered_edge({"config": storage, "s3Credentials": {"accessKey": "x", "secretKey": "y"}},
                                    port, tmp_path)
    try:
        manifest = httpx.get(f"http://127.0.0.1:{port}/v2/deploy/app/manifests/v1",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert manifest.status_code == 200
        assert manifest.headers["docker-content-digest"] == image.manifest_digest
        blob = httpx.get(f"http://127.0.0.1:{port}/v2/deploy/app/blobs/{image.layer_digests[0]}")
        assert blob.status_code == 200 and len(blob.content) > 0
    finally:
        server.stop()
    assert '"route":"blob"' in (tmp_path / "edge.log").read_text()  # the chart's JSON access log


def test_the_rendered_edge_runs_the_upstream_routes_and_the_admin_token_from_its_secrets(seaweed, tmp_path):
    port = free_port()
    token = "admin-token-from-the-secret"
    values = {
        "config": {"storage": {"s3": {"regionendpoint": seaweed.endpoint, "bucket": "registry"}}},
        "s3Credentials": {"accessKey": "x", "secretKey": "y"},
        "upstreams": [{"ns": "ghcr.io", "url": "http://127.0.0.1:9", "prefix": "ghcr", "username": "u", "password": "p"}],
        "admin": {"enabled": True, "token": token},
    }
    server, _ = start_rendered_edge(values, port, tmp_path)
    try:
        anonymous = httpx.get(f"http://127.0.0.1:{port}/admin/stats")
        stats = httpx.get(f"http://127.0.0.1:{port}/admin/stats", headers={"Authorization": f"Bearer {token}"})
    finally:
        server.stop()
    assert anonymous.status_code == 401
    assert stats.status_code == 200
    assert [route["ns"] for route in stats.json()["routes"]] == ["ghcr.io"]
