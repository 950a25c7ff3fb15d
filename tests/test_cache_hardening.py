"""Hostile or stale input against the cache: memory stays bounded, deletes made elsewhere are noticed, and
one cache directory belongs to one process."""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.blobs import push_blob
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.breakable_link import BreakableLink

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _push_manifest(registry_url: str, name: str) -> str:
    """Push a small OCI image (config, one layer, manifest) through registry:2; returns the manifest digest."""
    config = push_blob(registry_url, name, b"{}")
    layer_bytes = os.urandom(1000)
    layer = push_blob(registry_url, name, layer_bytes)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": len(layer_bytes)}],
    }).encode()
    response = httpx.put(
        f"{registry_url}/v2/{name}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def _edge(seaweed, workdir: Path, **sections) -> EdgeMirror:
    return EdgeMirror(workdir, s3_storage(seaweed.endpoint, "registry"), **sections)


def test_manifest_request_for_a_cached_layer_does_not_read_the_layer_into_memory(registry_s3, seaweed, tmp_path):
    layer = os.urandom(64 * MIB)
    digest = push_blob(registry_s3.url, "team/big", layer)
    edge = _edge(seaweed, tmp_path / "edge")
    with edge:
        assert httpx.get(f"{edge.url}/v2/team/big/blobs/{digest}", timeout=60).status_code == 200
    with edge:  # a fresh process, so its peak RSS is not the fill's
        before = edge.peak_rss_bytes()
        for name in ("team/big", "team/stranger"):  # the repository that links it as a layer, and one that does not
            response = httpx.get(f"{edge.url}/v2/{name}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
            assert response.status_code == 404, response.text
            assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        grown = edge.peak_rss_bytes() - before
    assert grown < 24 * MIB, f"peak RSS grew by {grown / MIB:.0f} MiB answering 404s for a 64 MiB layer"


# The two tests below run with link_ttl = 0s: the TTL has always passed, so no test waits it out in real time.
# That a link answer is trusted until link_ttl and not after, across restarts too, is tested on a fake clock in
# tests/unit/test_link_cache.py; these show that the edge then reads the link again from the bucket.


def test_a_blob_deleted_through_registry2_is_noticed_after_link_ttl(registry_s3, seaweed, tmp_path):
    digest = push_blob(registry_s3.url, "team/deleted", os.urandom(100_000))
    with _edge(seaweed, tmp_path / "edge", cache={"link_ttl": "0s"}) as edge:
        assert httpx.get(f"{edge.url}/v2/team/deleted/blobs/{digest}").status_code == 200
        assert httpx.delete(f"{registry_s3.url}/v2/team/deleted/blobs/{digest}").status_code == 202
        response = httpx.get(f"{edge.url}/v2/team/deleted/blobs/{digest}")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_a_manifest_deleted_through_registry2_is_noticed_after_a_restart(registry_s3, seaweed, tmp_path):
    digest = _push_manifest(registry_s3.url, "team/gone")
    edge = _edge(seaweed, tmp_path / "edge", cache={"link_ttl": "0s"})
    with edge:
        pulled = httpx.get(f"{edge.url}/v2/team/gone/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200
    assert httpx.delete(f"{registry_s3.url}/v2/team/gone/manifests/{digest}").status_code == 202
    with edge:
        response = httpx.get(f"{edge.url}/v2/team/gone/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_a_second_process_on_the_cache_dir_is_refused_and_the_first_ones_fill_completes(registry_s3, seaweed, tmp_path):
    data = os.urandom(8 * MIB)
    digest = push_blob(registry_s3.url, "team/locked", data)
    with BreakableLink(seaweed.endpoint, tmp_path / "link", aggregate_bandwidth="4MB") as link:
        small_parts = {"part_size": "1MiB", "first_part_size": "256KiB"}
        first = EdgeMirror(tmp_path / "first", s3_storage(link.endpoint, "registry"), fill=small_parts)
        partial = tmp_path / "first" / "cache" / "partial"
        with first, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.get, f"{first.url}/v2/team/locked/blobs/{digest}", timeout=60)
            deadline = time.monotonic() + 20
            while not any(partial.iterdir()) and time.monotonic() < deadline:
                time.sleep(0.02)
            shared = {"dir": str(tmp_path / "first" / "cache")}
            second = EdgeMirror(tmp_path / "second", s3_storage(link.endpoint, "registry"), cache=shared)
            try:
                with pytest.raises(RuntimeError):
                    second.start()
            finally:
                second.stop()
            assert second.process is not None and second.process.returncode == 2
            assert "config error: cache.dir" in second.log_tail()
            response = pending.result()
            assert response.status_code == 200
            assert response.content == data
            assert first.metrics().value("mirror_fills_total", result="ok") == 1
