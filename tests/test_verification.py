"""Nothing that fails verification is committed or delivered as a successful transfer."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import layout_keys
from tests.support.blobs import push_blob
from tests.support.edge import EdgeMirror, s3_storage

SIZE = 3 * 1024 * 1024 + 17


@pytest.fixture
def tampered(registry_s3, seaweed) -> str:
    """A blob pushed by registry:2 whose bytes in the bucket were then changed (same length)."""
    original = bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256)
    digest = push_blob(registry_s3.url, "team/tampered", original)
    corrupted = bytearray(original)
    corrupted[SIZE // 2] ^= 0xFF
    seaweed.client().put_object(Bucket="registry", Key=layout_keys.blob_data(digest), Body=bytes(corrupted))
    return digest


@pytest.fixture
def edge(seaweed, tmp_path):
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), fill={"part_size": "1MiB", "first_part_size": "256KiB"}) as mirror:
        yield mirror


def _transfer_fails(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        with httpx.stream("GET", url, headers=headers or {}, timeout=60) as response:
            received = sum(len(chunk) for chunk in response.iter_bytes())
            declared = int(response.headers["Content-Length"])
            return received < declared
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return True


def test_tampered_blob_transfer_fails_and_is_never_committed(tampered, edge):
    url = f"{edge.url}/v2/team/tampered/blobs/{tampered}"
    assert _transfer_fails(url)
    assert _transfer_fails(url), "a second request must not be served a committed corrupt copy"
    metrics = edge.metrics()
    assert metrics.value("mirror_fills_total", result="digest_mismatch") == 2
    assert metrics.value("mirror_fills_total", result="ok") == 0
    assert metrics.value("mirror_cache_requests_total", kind="blob", result="hit") == 0


def test_range_of_a_tampered_blob_is_never_committed(tampered, edge):
    """A Range completes once its bytes are written (a range cannot be verified alone), but the fill behind it
    still finds the mismatch, counts it and commits nothing: the next full GET fails too."""
    url = f"{edge.url}/v2/team/tampered/blobs/{tampered}"
    ranged = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=60)
    assert ranged.status_code == 206
    deadline = time.monotonic() + 30
    while edge.metrics().value("mirror_fills_total", result="digest_mismatch") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _transfer_fails(url)
    metrics = edge.metrics()
    assert metrics.value("mirror_fills_total", result="digest_mismatch") == 2
    assert metrics.value("mirror_fills_total", result="ok") == 0
