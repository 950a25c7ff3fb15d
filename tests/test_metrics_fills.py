"""Fill and backend metrics tell what happened: a fill stopped because its repository check failed counts as
stopped with its backend reads cancelled (not errors), and fill durations land in buckets that resolve them."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import httpx

from tests.support.blobs import push_blob
from tests.support.bucket_files import put_linked_blob
from tests.support.edge import EdgeMirror, Metrics, filesystem_storage, s3_storage

MIB = 1024 * 1024
GETS = 6
SMALL_FILLS = 3


def _wait_fills(edge: EdgeMirror, count: int, timeout: float = 60) -> Metrics:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scraped = edge.metrics()
        if scraped.value("mirror_fills_total") >= count:
            return scraped
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} fills finished")


def test_gets_of_an_unlinked_blob_count_stopped_fills_and_no_backend_errors(registry_s3, seaweed, tmp_path: Path):
    """The operator's case: GETs of a blob the bucket holds under another repository. Each starts a fill beside
    the link check; the failed check stops it. Whether a backend read was still in flight then is timing
    (tests/unit/test_instrumented_upstream.py pins the cancelled label itself): none may count as an error."""
    digest = push_blob(registry_s3.url, "team/owner", os.urandom(4 * MIB))
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry")) as edge:
        for _ in range(GETS):
            assert httpx.get(f"{edge.url}/v2/team/stranger/blobs/{digest}", timeout=30).status_code == 404
        scraped = _wait_fills(edge, GETS)
    assert scraped.value("mirror_fills_total", result="stopped") == GETS
    assert scraped.value("mirror_fills_total") == GETS
    assert scraped.value("mirror_backend_requests_total", status="error") == 0


def test_small_loopback_fills_land_in_resolving_buckets(tmp_path: Path):
    root = tmp_path / "root"
    digests = [put_linked_blob(root, "team/small", os.urandom(16 * 1024)) for _ in range(SMALL_FILLS)]
    with EdgeMirror(tmp_path / "edge", filesystem_storage(root)) as edge:
        for digest in digests:
            assert httpx.get(f"{edge.url}/v2/team/small/blobs/{digest}", timeout=30).status_code == 200
        scraped = _wait_fills(edge, SMALL_FILLS)
    print("seconds per fill:", scraped.value("mirror_fill_duration_seconds_sum") / SMALL_FILLS)
    cumulative = sorted(
        (float(sample.labels["le"]), sample.value) for sample in scraped["mirror_fill_duration_seconds_bucket"]
    )
    assert scraped.value("mirror_fill_duration_seconds_count") == SMALL_FILLS
    assert cumulative[0][1] == 0, f"a fill fell into the lowest bucket (le={cumulative[0][0]})"
    for (lower, below), (upper, count) in zip(cumulative, cumulative[1:]):
        if count > below:  # fills landed in (lower, upper]
            assert not math.isinf(upper) and upper / lower <= 2.5, f"({lower}, {upper}] does not resolve a fill"
