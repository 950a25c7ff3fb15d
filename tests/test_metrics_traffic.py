"""Traffic metrics count what they say: a push's reads of its own data are op="push_read", not the link and
manifest reads of pulls (op="read"); answers to the region's other edges are not client traffic."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx

from mirror.peers.ownership import owner
from tests.support.blobs import push_blob
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage, s3_storage
from tests.support.ports import free_port

MIB = 1024 * 1024
# Link, state and manifest reads of one push: a few small objects.
SMALL_READS = 64 * 1024


def test_push_reads_of_pushed_data_are_not_counted_as_pull_reads(tmp_path: Path):
    (tmp_path / "root").mkdir()
    data = os.urandom(3 * MIB)  # under one part: kept as the upload's tail
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "root"), auth=ANONYMOUS_PUSH) as edge:
        location = httpx.post(f"{edge.url}/v2/team/pushed/blobs/uploads/", timeout=30).headers["Location"]
        sent = httpx.patch(f"{edge.url}{location}", content=data, timeout=30, headers={"Content-Range": f"0-{len(data) - 1}"})
        assert sent.status_code == 202, sent.text
        edge.restart()  # the tail kept in memory is gone: the finish reads it back from the backend
        finished = httpx.put(f"{edge.url}{location}", params={"digest": digest}, timeout=30)
        assert finished.status_code == 201, finished.text
        scraped = edge.metrics()
    assert scraped.value("mirror_backend_bytes_total", op="read") < SMALL_READS
    assert scraped.value("mirror_backend_bytes_total", op="push_read") >= 3 * MIB
    assert scraped.value("mirror_backend_requests_total", op="push_read", status="ok") >= 1


def test_answers_to_peers_are_counted_apart_from_client_traffic(registry_s3, seaweed, tmp_path: Path):
    size = 3 * MIB
    digest = push_blob(registry_s3.url, "team/peer-traffic", os.urandom(size))
    ports = [free_port(), free_port()]
    peers = {"secret": "region-secret-for-the-metrics-test", "timeout": "10s",
             "addresses": [f"127.0.0.1:{port}" for port in ports]}
    storage = s3_storage(seaweed.endpoint, "registry")
    edges = [EdgeMirror(tmp_path / f"edge{port}", storage, port=port, peers=peers) for port in ports]
    with edges[0], edges[1]:
        owning = next(edge for edge in edges if edge.host == owner(digest, [edge.host for edge in edges]))
        asked = next(edge for edge in edges if edge is not owning)
        response = httpx.get(f"{asked.url}/v2/team/peer-traffic/blobs/{digest}", timeout=60)
        assert response.status_code == 200 and len(response.content) == size
        owner_metrics, asked_metrics = owning.metrics(), asked.metrics()
    assert asked_metrics.value("mirror_peer_bytes_total") == size  # the client's edge read the owner
    # The owner's clients asked nothing: its answer to the peer is peer traffic only.
    assert owner_metrics.value("mirror_served_bytes_total") == 0
    assert owner_metrics.value("mirror_cache_requests_total", kind="blob") == 0
    assert owner_metrics.value("mirror_peer_served_bytes_total") == size
    assert owner_metrics.value("mirror_peer_served_requests_total") >= 1
    assert asked_metrics.value("mirror_served_bytes_total") == size
