"""A 1 GiB push streams through the edge: its memory stays bounded by one upload part, not the blob."""

from __future__ import annotations

import hashlib
import random
from typing import Iterator

import httpx

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, s3_storage

MIB = 1024 * 1024
SIZE = 1024 * MIB
RSS_BOUND = 300 * MIB


def test_one_gib_push_keeps_peak_rss_bounded(seaweed, registry_s3, tmp_path):
    generator = random.Random(101)
    hasher = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for _ in range(SIZE // MIB):
            chunk = generator.randbytes(MIB)
            hasher.update(chunk)
            yield chunk

    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), auth=ANONYMOUS_PUSH) as edge:
        with httpx.Client(base_url=edge.url, timeout=600) as client:
            location = client.post("/v2/pushed/huge/blobs/uploads/").headers["Location"]
            patched = client.patch(location, content=body(), headers={"Content-Type": "application/octet-stream"})
            assert patched.status_code == 202, patched.text
            assert patched.headers["Range"] == f"0-{SIZE - 1}"
            digest = "sha256:" + hasher.hexdigest()
            finished = client.put(f"{location}?digest={digest}")
            assert finished.status_code == 201, finished.text
        peak = edge.peak_rss_bytes()
        print(f"edge peak RSS during a 1 GiB push: {peak / MIB:.0f} MiB")
        assert peak < RSS_BOUND
    head = httpx.head(f"{registry_s3.url}/v2/pushed/huge/blobs/{digest}", timeout=60)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == SIZE
