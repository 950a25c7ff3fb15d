"""The disk cache stays under `cache.size` by evicting the least recently used, and survives a restart."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.support.blobs import push_blob
from tests.support.edge import EdgeMirror, s3_storage

MIB = 1024 * 1024
LIMIT = 24 * MIB


def _directory_bytes(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


@pytest.fixture(scope="module")
def blobs(registry_s3) -> list[str]:
    return [push_blob(registry_s3.url, "team/evict", os.urandom(5 * MIB + index)) for index in range(8)]


def _edge(seaweed, workdir: Path) -> EdgeMirror:
    return EdgeMirror(workdir, s3_storage(seaweed.endpoint, "registry"), cache={"size": "24MiB"})


def test_eviction_keeps_the_content_directory_under_the_cache_size(seaweed, blobs, tmp_path):
    with _edge(seaweed, tmp_path / "edge") as edge:
        for digest in blobs:
            response = httpx.get(f"{edge.url}/v2/team/evict/blobs/{digest}", timeout=60)
            assert response.status_code == 200
            assert _directory_bytes(tmp_path / "edge" / "cache" / "content") <= LIMIT
        metrics = edge.metrics()
        assert metrics.value("mirror_cache_evictions_total") >= 3
        assert metrics.value("mirror_cache_size_bytes") <= LIMIT


def test_least_recently_used_blob_is_evicted_first(seaweed, blobs, tmp_path):
    with _edge(seaweed, tmp_path / "edge") as edge:
        first, second, *rest = blobs  # four 5 MiB blobs fit in 24 MiB, five do not
        for digest in (first, second, *rest[:2]):
            httpx.get(f"{edge.url}/v2/team/evict/blobs/{digest}", timeout=60)
        httpx.get(f"{edge.url}/v2/team/evict/blobs/{first}", timeout=60)  # touch: now most recently used
        for digest in rest[2:4]:
            httpx.get(f"{edge.url}/v2/team/evict/blobs/{digest}", timeout=60)
        before = edge.metrics().value("mirror_backend_bytes_total", op="read_range")
        httpx.get(f"{edge.url}/v2/team/evict/blobs/{first}", timeout=60)
        assert edge.metrics().value("mirror_backend_bytes_total", op="read_range") == before
        httpx.get(f"{edge.url}/v2/team/evict/blobs/{second}", timeout=60)
        assert edge.metrics().value("mirror_backend_bytes_total", op="read_range") > before


def test_cache_survives_a_restart(seaweed, blobs, tmp_path):
    edge = _edge(seaweed, tmp_path / "edge")
    with edge:
        first = httpx.get(f"{edge.url}/v2/team/evict/blobs/{blobs[0]}", timeout=60)
        assert first.status_code == 200
    with edge:
        again = httpx.get(f"{edge.url}/v2/team/evict/blobs/{blobs[0]}", timeout=60)
        assert again.content == first.content
        metrics = edge.metrics()
        assert metrics.value("mirror_backend_bytes_total") == 0
        assert metrics.value("mirror_cache_requests_total", kind="blob", result="hit") == 1
