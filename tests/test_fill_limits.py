"""What a fill may cost: a blob larger than the cache is served through without wiping the cache, and a fill
that only an unlinked request asked for is stopped (issue 9 items 5 and 16)."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.support.blobs import push_blob
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.link import LinkEmulator

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def blobs(registry_s3) -> dict[str, tuple[str, bytes]]:
    made = {}
    for label, size in (("small", 1 * MIB), ("huge", 6 * MIB), ("big", 32 * MIB), ("other", 24 * MIB)):
        data = os.urandom(size)
        made[label] = (push_blob(registry_s3.url, "team/owner", data), data)
    return made


def _wait_for(edge: EdgeMirror, name: str, at_least: float, timeout: float = 30, **labels: str) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = edge.metrics().value(name, **labels)
        if value >= at_least or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_blob_larger_than_the_cache_is_served_through_and_keeps_the_cache(seaweed, blobs, tmp_path):
    (small, small_data), (huge, huge_data) = blobs["small"], blobs["huge"]
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), cache={"size": "4MiB"}) as edge:
        assert httpx.get(f"{edge.url}/v2/team/owner/blobs/{small}", timeout=60).content == small_data
        for _ in range(2):
            response = httpx.get(f"{edge.url}/v2/team/owner/blobs/{huge}", timeout=60)
            assert response.status_code == 200
            assert response.content == huge_data
        assert _wait_for(edge, "mirror_fill_uncached_total", 2, reason="too_large") == 2
        before = edge.metrics().value("mirror_backend_bytes_total", op="read_range")
        assert httpx.get(f"{edge.url}/v2/team/owner/blobs/{small}", timeout=60).content == small_data
        metrics = edge.metrics()
        assert metrics.value("mirror_backend_bytes_total", op="read_range") == before, "the small blob was evicted"
        assert metrics.value("mirror_cache_size_bytes") <= 4 * MIB
        assert metrics.value("mirror_fills_total", result="uncached") == 2


def test_a_fill_that_does_not_fit_beside_running_partials_is_served_through(seaweed, blobs, tmp_path):
    """Partial files count against cache.size: while a 32 MiB fill runs in a 48 MiB cache, a 24 MiB blob cannot
    also be cached, so it is served through (verified) and the cache never holds more than its size."""
    (big, big_data), (other, other_data) = blobs["big"], blobs["other"]
    link = LinkEmulator(tmp_path, seaweed.endpoint, 100, "10MB", "400MB")
    try:
        storage = s3_storage(link.endpoint, "registry")
        with EdgeMirror(tmp_path / "edge", storage, cache={"size": "48MiB"}, fill={"parallelism": 4}) as edge:
            with httpx.Client(timeout=120) as client:
                with client.stream("GET", f"{edge.url}/v2/team/owner/blobs/{big}") as first:
                    assert first.status_code == 200
                    second = client.get(f"{edge.url}/v2/team/owner/blobs/{other}")
                    assert second.status_code == 200
                    assert second.content == other_data
                    assert first.read() == big_data
            assert _wait_for(edge, "mirror_fills_total", 1, result="ok") == 1
            metrics = edge.metrics()
            assert metrics.value("mirror_fill_uncached_total", reason="no_room") == 1
            assert metrics.value("mirror_fills_total", result="uncached") == 1
            assert metrics.value("mirror_cache_size_bytes") <= 48 * MIB
    finally:
        link.stop()


def test_fill_for_an_unlinked_repository_is_stopped(seaweed, blobs, tmp_path):
    big, _ = blobs["big"]
    link = LinkEmulator(tmp_path, seaweed.endpoint, 100, "10MB", "400MB")
    try:
        with EdgeMirror(tmp_path / "edge", s3_storage(link.endpoint, "registry"), fill={"parallelism": 4}) as edge:
            response = httpx.get(f"{edge.url}/v2/team/stranger/blobs/{big}", timeout=60)
            assert response.status_code == 404
            assert response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
            assert _wait_for(edge, "mirror_fills_total", 1, result="stopped") == 1
            time.sleep(0.5)
            assert link.bytes_down() < 32 * MIB // 4, "the stopped fill kept downloading"
            assert edge.metrics().value("mirror_fills_total", result="ok") == 0
    finally:
        link.stop()


def test_linked_request_during_an_unlinked_one_keeps_the_fill(seaweed, blobs, tmp_path):
    big, data = blobs["big"]
    link = LinkEmulator(tmp_path, seaweed.endpoint, 100, "10MB", "400MB")
    try:
        with EdgeMirror(tmp_path / "edge", s3_storage(link.endpoint, "registry"), fill={"parallelism": 4}) as edge:
            with httpx.Client(timeout=60) as client:
                with client.stream("GET", f"{edge.url}/v2/team/owner/blobs/{big}") as owner:
                    stranger = httpx.get(f"{edge.url}/v2/team/stranger/blobs/{big}", timeout=60)
                    assert stranger.status_code == 404
                    assert owner.status_code == 200
                    assert owner.read() == data
            assert _wait_for(edge, "mirror_fills_total", 1, result="ok") == 1
            assert edge.metrics().value("mirror_fills_total", result="stopped") == 0
    finally:
        link.stop()


def test_blob_is_served_straight_through_when_the_disk_refuses_a_partial_file(seaweed, blobs, tmp_path):
    """Opening the partial file fails (here: its directory was replaced by a file; in life ENOSPC or EMFILE):
    the client still gets the verified blob and its ranges, nothing is cached, and the edge says so."""
    small, data = blobs["small"]
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry")) as edge:
        partial = tmp_path / "edge" / "cache" / "partial"
        partial.rmdir()
        partial.write_bytes(b"")
        url = f"{edge.url}/v2/team/owner/blobs/{small}"
        whole = httpx.get(url, timeout=60)
        assert whole.status_code == 200
        assert whole.content == data
        ranged = httpx.get(url, headers={"Range": "bytes=1000-1999"}, timeout=60)
        assert ranged.status_code == 206
        assert ranged.content == data[1000:2000]
        metrics = edge.metrics()
        assert metrics.value("mirror_fill_uncached_total", reason="no_disk") == 2
        assert metrics.value("mirror_cache_requests_total", kind="blob", result="hit") == 0
