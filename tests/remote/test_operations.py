"""``edge-mirror warm / purge / stats`` against a running edge, and the admin endpoint they use."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.remote.conftest import ADMIN_TOKEN, blob_key, bucket_key_exists, wait_for_writeback
from tests.support.edge import REPO_ROOT


def _cli(edge, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror", *args[:1], "--config", str(edge.config_path), *args[1:]],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )


def _blob_hits(edge) -> float:
    return edge.metrics().value("mirror_cache_requests_total", kind="blob", result="hit")


def test_warm_fills_the_node_cache_and_the_bucket(make_edge, push_remote, proxy, s3):
    image = push_remote("team/warm", [200_000, 3_000], seed=301)
    edge = make_edge()
    result = _cli(edge, "warm", "team/warm:v1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"warm ({len(image.blob_digests)} blobs" in result.stdout
    wait_for_writeback(edge)
    assert all(bucket_key_exists(s3, blob_key(digest)) for digest in image.blob_digests)
    hits = _blob_hits(edge)
    remote_gets = len(proxy.seen)
    for digest in image.blob_digests:
        assert httpx.get(f"{edge.url}/v2/team/warm/blobs/{digest}", timeout=30).status_code == 200
    assert _blob_hits(edge) == hits + len(image.blob_digests)
    assert len(proxy.seen) == remote_gets


def test_warm_with_a_platform_fetches_only_that_platform(make_edge, push_remote, s3):
    index = push_remote("team/warm-multi", [60_000], seed=302, index=True)
    arm64 = next(image for image in index.images if image.platform == ("linux", "arm64"))
    amd64 = next(image for image in index.images if image.platform == ("linux", "amd64"))
    edge = make_edge()
    result = _cli(edge, "warm", "--platform", "linux/arm64", "team/warm-multi:v1")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for_writeback(edge)
    assert all(bucket_key_exists(s3, blob_key(digest)) for digest in arm64.blob_digests)
    assert not any(bucket_key_exists(s3, blob_key(digest)) for digest in amd64.layer_digests)


def test_warm_reports_an_image_the_remote_lacks_and_exits_non_zero(make_edge):
    edge = make_edge()
    result = _cli(edge, "warm", "team/absent:v1")
    assert result.returncode == 1
    assert "team/absent:v1: FAILED" in result.stdout and "MANIFEST_UNKNOWN" in result.stdout


def test_purge_drops_the_image_from_the_node_and_sends_the_next_tag_lookup_to_the_remote(make_edge, push_remote, proxy):
    image = push_remote("team/purged", [80_000], seed=303)
    edge = make_edge()
    assert _cli(edge, "warm", "team/purged:v1").returncode == 0
    wait_for_writeback(edge)
    result = _cli(edge, "purge", "team/purged:v1")
    assert result.returncode == 0, result.stderr
    assert "dropped 3 objects from remote/team/purged" in result.stdout  # manifest, config, layer

    heads_before = sum(1 for seen in proxy.seen if seen.method == "HEAD" and seen.path.endswith("/manifests/v1"))
    misses = edge.metrics().value("mirror_cache_requests_total", kind="blob", result="miss")
    assert httpx.get(f"{edge.url}/v2/team/purged/manifests/v1", timeout=30).status_code == 200
    assert httpx.get(f"{edge.url}/v2/team/purged/blobs/{image.layer_digests[0]}", timeout=30).status_code == 200
    assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="miss") == misses + 1
    heads_after = sum(1 for seen in proxy.seen if seen.method == "HEAD" and seen.path.endswith("/manifests/v1"))
    assert heads_after == heads_before + 1
    assert proxy.blob_bytes(image.layer_digests[0]) == image.layer_sizes[0]  # refilled from the bucket, not the remote


def test_stats_prints_cache_size_hit_ratios_and_top_repositories(make_edge, push_remote):
    push_remote("team/popular", [10_000], seed=304)
    edge = make_edge()
    assert _cli(edge, "warm", "team/popular:v1").returncode == 0
    assert _cli(edge, "warm", "team/popular:v1").returncode == 0
    result = _cli(edge, "stats")
    assert result.returncode == 0, result.stderr
    assert "cache: " in result.stdout
    assert "hit ratio by requests: 50.0%" in result.stdout
    assert "hit ratio by bytes: 50.0%" in result.stdout
    assert "  remote/team/popular: " in result.stdout


def test_the_admin_endpoint_is_absent_unless_enabled(make_edge):
    edge = make_edge(admin={"enabled": False})
    response = httpx.get(f"{edge.url}/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code == 404


def test_the_admin_endpoint_refuses_a_wrong_token(make_edge):
    edge = make_edge()
    response = httpx.get(f"{edge.url}/admin/stats", headers={"Authorization": "Bearer wrong-token"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
