"""Prefetch from the manifest of an image that only the remote behind the bucket holds: the background fills read
on behalf of the manifest's repository, so the remote tier routes them to the remote, as it routes a client's."""

from __future__ import annotations

import time

import httpx

from tests.remote.conftest import wait_for_writeback

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


def test_a_remote_only_image_manifest_prefetches_its_layers_from_the_remote(make_edge, push_remote):
    image = push_remote("team/prefetched", [300_000, 40_000], seed=311)
    edge = make_edge(fill={"prefetch": True})
    assert httpx.get(f"{edge.url}/v2/team/prefetched/manifests/v1", headers=ACCEPT, timeout=30).status_code == 200
    total = image.config_size + sum(image.layer_sizes)
    deadline = time.monotonic() + 30
    while edge.metrics().value("mirror_prefetch_bytes_total") < total:
        assert time.monotonic() < deadline, edge.log_tail()
        time.sleep(0.05)
    scraped = edge.metrics()
    assert scraped.value("mirror_prefetch_bytes_total", result="filled") == total
    for digest in image.blob_digests:
        assert httpx.get(f"{edge.url}/v2/team/prefetched/blobs/{digest}", timeout=30).status_code == 200
    assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="hit") == len(image.blob_digests)
    wait_for_writeback(edge)
