"""Refused requests are visible to the dashboard from their first occurrence: the denial and the exact status
are counted in series that exist at 0 before any request (rate() never sees a series' first value)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.support.bucket_files import put_linked_blob
from tests.support.edge import EdgeMirror, filesystem_storage
from tests.support.ports import free_port


def _samples(scraped, name: str, **labels: str) -> list[float]:
    return [sample.value for sample in scraped.get(name, []) if sample.labels == labels]


def test_refused_deletes_and_a_bad_range_are_counted_from_zero(tmp_path: Path):
    digest = put_linked_blob(tmp_path / "root", "team/app", os.urandom(1000))
    denied = {"method": "none", "result": "denied"}
    forbidden = {"method": "DELETE", "route": "blob", "status": "403"}
    unsatisfiable = {"method": "GET", "route": "blob", "status": "416"}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "root")) as edge:  # anonymous pull only
        before = edge.metrics()
        blob = f"{edge.url}/v2/team/app/blobs/{digest}"
        assert [httpx.delete(blob, timeout=10).status_code for _ in range(2)] == [403, 403]
        assert httpx.get(blob, headers={"Range": "bytes=5000-"}, timeout=10).status_code == 416
        after = edge.metrics()
    assert _samples(before, "mirror_auth_requests_total", **denied) == [0]
    assert _samples(before, "mirror_http_requests_total", **forbidden) == [0]
    assert _samples(before, "mirror_http_requests_total", **unsatisfiable) == [0]
    assert _samples(after, "mirror_auth_requests_total", **denied) == [2]
    assert _samples(after, "mirror_http_requests_total", **forbidden) == [2]
    assert _samples(after, "mirror_http_requests_total", **unsatisfiable) == [1]


def test_unsigned_peer_reads_and_admin_calls_without_token_count_as_invalid_credentials(tmp_path: Path):
    digest = put_linked_blob(tmp_path / "root", "team/app", os.urandom(1000))
    port = free_port()
    peers = {"secret": "region-secret-for-the-refusal-test", "addresses": [f"127.0.0.1:{port}"]}
    admin = {"enabled": True, "token": "an-admin-token-long-enough-for-the-check"}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "root"), port=port, peers=peers, admin=admin) as edge:
        assert httpx.get(f"{edge.url}/_peer/blobs/{digest}", timeout=10).status_code == 401
        assert httpx.get(f"{edge.url}/admin/stats", timeout=10).status_code == 401
        scraped = edge.metrics()
    assert scraped.value("mirror_auth_requests_total", method="peer", result="invalid") == 1
    assert scraped.value("mirror_auth_requests_total", method="admin", result="invalid") == 1
