"""A push verifies its digest without reading its data back when every chunk reached this edge (the running
hash and the last tail are kept with the session's state nonce); chunks that crossed edges are verified by
reading the assembled data back. Reads of pushed data are ``mirror_backend_bytes_total{op="push_read"}``."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage

MIB = 1024 * 1024
UPLOAD = {"part_size": "5MiB"}
SIZE = 23 * MIB  # four whole parts and a 3 MiB tail


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _data(seed: str) -> bytes:
    return random.Random(seed).randbytes(SIZE)


@pytest.fixture
def edges(tmp_path: Path) -> Iterator[tuple[EdgeMirror, EdgeMirror]]:
    storage = filesystem_storage(tmp_path / "root")
    (tmp_path / "root").mkdir()
    first = EdgeMirror(tmp_path / "a", storage, upload=UPLOAD, auth=ANONYMOUS_PUSH).start()
    second = EdgeMirror(tmp_path / "b", storage, upload=UPLOAD, auth=ANONYMOUS_PUSH).start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def _push_in_chunks(urls: list[str], name: str, data: bytes, digest: str, cuts: list[int]) -> httpx.Response:
    """PATCH the pieces of `data` between `cuts`, the i-th to ``urls[i % len(urls)]``, then PUT (empty) with
    `digest` to the last edge that took a chunk; the PUT's answer."""
    with httpx.Client(base_url=urls[0], timeout=60) as client:
        location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    bounds = [0, *cuts, len(data)]
    url = urls[0]
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        url = urls[index % len(urls)]
        response = httpx.patch(
            f"{url}{location}", content=data[start:end], timeout=60,
            headers={"Content-Range": f"{start}-{end - 1}", "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 202, response.text
    return httpx.put(f"{url}{location}", params={"digest": digest}, timeout=60)


def _push_read(edge: EdgeMirror) -> float:
    return edge.metrics().value("mirror_backend_bytes_total", op="push_read")


def test_a_monolithic_push_finishes_without_reading_its_data_back(edges):
    edge, _ = edges
    data = _data("monolithic")
    response = httpx.post(f"{edge.url}/v2/team/mono/blobs/uploads/", params={"digest": _digest(data)}, content=data, timeout=60)
    assert response.status_code == 201, response.text
    assert _push_read(edge) == 0


def test_a_push_in_chunks_to_one_edge_finishes_without_reading_its_data_back(edges):
    edge, _ = edges
    data = _data("chunks")
    # chunks of whole parts, then the last with a 3 MiB tail (a next chunk reads a tail left between chunks back)
    response = _push_in_chunks([edge.url], "team/chunks", data, _digest(data), [5 * MIB, 15 * MIB])
    assert response.status_code == 201, response.text
    assert _push_read(edge) == 0
    assert hashlib.sha256(httpx.get(f"{edge.url}/v2/team/chunks/blobs/{_digest(data)}", timeout=60).content).hexdigest() == _digest(data)[7:]


def test_a_push_whose_chunks_crossed_edges_is_verified_by_reading_it_back(edges):
    first, second = edges
    data = _data("crossed")
    response = _push_in_chunks([first.url, second.url], "team/crossed", data, _digest(data), [7 * MIB])
    assert response.status_code == 201, response.text
    assert _push_read(second) >= SIZE  # the finishing edge did not see the first chunk: it read the data back
    assert httpx.head(f"{first.url}/v2/team/crossed/blobs/{_digest(data)}", timeout=30).status_code == 200


@pytest.mark.parametrize("crossing", [False, True], ids=["one_edge", "crossed_edges"])
def test_a_wrong_digest_is_refused_in_both_paths(edges, crossing: bool):
    first, second = edges
    data = _data(f"wrong-{crossing}")
    wrong = _digest(data[:-1] + b"x")
    urls = [first.url, second.url] if crossing else [first.url]
    response = _push_in_chunks(urls, "team/wrong", data, wrong, [7 * MIB])
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert httpx.head(f"{first.url}/v2/team/wrong/blobs/{wrong}", timeout=30).status_code == 404
    finisher = second if crossing else first
    assert (_push_read(finisher) >= SIZE) == crossing  # only the crossed session was read back
