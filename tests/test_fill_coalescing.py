"""Concurrent requests for one cold blob share one backend read, whether they ask for all of it or a Range."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest

from tests.support.blobs import push_blob_file, write_random_file
from tests.support.edge import EdgeMirror, s3_storage

MIB = 1024 * 1024
PART = 8 * MIB
SIZE = 64 * MIB + 12345


@pytest.fixture(scope="module")
def cold_blob(registry_s3, tmp_path_factory) -> tuple[str, Path]:
    path = write_random_file(tmp_path_factory.mktemp("herd") / "blob", SIZE, seed=31)
    return push_blob_file(registry_s3.url, "team/herd", path), path


async def _fetch_all(url: str, requests: list[dict[str, str]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=len(requests))) as client:
        return await asyncio.gather(*(client.get(url, headers=headers) for headers in requests))


def test_32_concurrent_requests_for_a_cold_blob_read_it_from_the_backend_once(seaweed, cold_blob, tmp_path):
    digest, path = cold_blob
    expected = path.read_bytes()
    chooser = random.Random(32)
    requests: list[dict[str, str]] = []
    wanted: list[tuple[int, int] | None] = []
    for index in range(32):
        if index % 4 == 3:
            start = chooser.randrange(SIZE)
            end = chooser.randrange(start, SIZE)
            requests.append({"Range": f"bytes={start}-{end}"})
            wanted.append((start, end + 1))
        else:
            requests.append({})
            wanted.append(None)

    storage = s3_storage(seaweed.endpoint, "registry")
    with EdgeMirror(tmp_path / "edge", storage, fill={"part_size": "8MiB", "first_part_size": "1MiB", "parallelism": 4}) as edge:
        responses = asyncio.run(_fetch_all(f"{edge.url}/v2/team/herd/blobs/{digest}", requests))
        for response, span in zip(responses, wanted):
            if span is None:
                assert response.status_code == 200
                assert response.content == expected
            else:
                assert response.status_code == 206
                assert response.headers["Content-Range"] == f"bytes {span[0]}-{span[1] - 1}/{SIZE}"
                assert response.content == expected[span[0]:span[1]]
        metrics = edge.metrics()
        backend_blob_bytes = metrics.value("mirror_backend_bytes_total", op="read_range")
        assert SIZE <= backend_blob_bytes <= SIZE + PART
        assert metrics.value("mirror_fills_total", result="ok") == 1
        assert metrics.value("mirror_fill_waiters_total") >= 1
