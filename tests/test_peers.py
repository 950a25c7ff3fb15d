"""Edges of one region share their caches: four edges on loopback, the real bucket (SeaweedFS) behind them.

Each edge is a real `python -m mirror serve` process configured with the region's static address list and secret.
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from mirror.peers import auth
from mirror.peers.ownership import owner
from tests.support import images, skopeo
from tests.support.blobs import push_blob, push_blob_file, write_random_file
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.ports import free_port
from tests.support.processes import start

MIB = 1024 * 1024
SECRET = "region-secret-for-the-peer-tests"
FILL = {"part_size": "1MiB", "first_part_size": "256KiB", "parallelism": 4}
# Generous: two shared cores run four edges, SeaweedFS, registry:2 and the clients.
PEERS = {"secret": SECRET, "timeout": "10s"}


def _region(workdir: Path, storage: dict[str, dict[str, Any]], count: int) -> list[EdgeMirror]:
    """`count` edges that list each other as the region."""
    ports = [free_port() for _ in range(count)]
    addresses = [f"127.0.0.1:{port}" for port in ports]
    return [
        EdgeMirror(workdir / f"edge{index}", storage, port=port, fill=FILL, peers={**PEERS, "addresses": addresses})
        for index, port in enumerate(ports)
    ]


@pytest.fixture
def region_of(tmp_path) -> Iterator[Any]:
    started: list[EdgeMirror] = []

    def make(storage: dict[str, dict[str, Any]], count: int) -> list[EdgeMirror]:
        edges = _region(tmp_path, storage, count)
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda edge: edge.start(timeout=120), edges))  # four cold starts at once on a busy machine
        started.extend(edges)
        return edges

    try:
        yield make
    finally:
        for edge in started:
            edge.stop()


def _total(edges: list[EdgeMirror], name: str, **labels: str) -> float:
    return sum(edge.metrics().value(name, **labels) for edge in edges)


def test_four_edges_pulling_one_image_at_once_read_the_bucket_once(registry_s3, seaweed, region_of, tmp_path):
    image = images.build_image(tmp_path / "layout", "v1", [5 * MIB, 3 * MIB, 2 * MIB, MIB], seed=1401)
    skopeo.push(image.layout_dir, "v1", f"{registry_s3.host}/team/peers:v1")
    image_bytes = len(image.manifest_bytes) + image.config_size + sum(image.layer_sizes)
    edges = region_of(s3_storage(seaweed.endpoint, "registry"), 4)

    def pull(index: int) -> dict[str, str]:
        out = tmp_path / f"pull{index}"
        skopeo.pull(f"{edges[index].host}/team/peers:v1", out, all_platforms=False)
        return skopeo.dir_digests(out)

    with ThreadPoolExecutor(4) as pool:
        pulls = list(pool.map(pull, range(4)))

    assert all(result == pulls[0] for result in pulls)
    assert {f"sha256:{name}" for name in pulls[0] if len(name) == 64} == set(image.blob_digests)
    bucket_bytes = _total(edges, "mirror_backend_bytes_total")
    assert bucket_bytes <= 1.05 * image_bytes, f"{bucket_bytes} bucket bytes for a {image_bytes}-byte image"
    assert _total(edges, "mirror_peer_bytes_total") >= 2 * sum(image.layer_sizes)


def _slow_link(seaweed, workdir: Path) -> tuple[Any, str]:
    """The benchmark's link emulator in front of the bucket at 4 MB/s, no added latency; (process, endpoint)."""
    listen, control = free_port(), free_port()
    link = start(
        [sys.executable, "-m", "load.emulator", "--listen", f"127.0.0.1:{listen}", "--upstream", seaweed.endpoint.split("//")[1],
         "--ttfb-fast-ms", "0", "--slow-fraction", "0", "--conn-bandwidth", "2MB", "--aggregate-bandwidth", "4MB",
         "--control", f"127.0.0.1:{control}"],
        workdir / "emulator.log", url=f"http://127.0.0.1:{control}/stats", cwd=Path(__file__).resolve().parents[1],
    )
    return link, f"http://127.0.0.1:{listen}"


def test_a_peer_gets_a_range_as_soon_as_it_lands_not_at_the_owners_commit(registry_s3, seaweed, tmp_path):
    path = write_random_file(tmp_path / "blob", 12 * MIB + 5, seed=1404)
    digest = push_blob_file(registry_s3.url, "team/peers-early", path)
    link, endpoint = _slow_link(seaweed, tmp_path)
    port = free_port()
    peers = {**PEERS, "addresses": [f"127.0.0.1:{port}"]}
    try:
        with EdgeMirror(tmp_path / "edge", s3_storage(endpoint, "registry"), port=port, fill=FILL, peers=peers) as edge:
            route = f"/_peer/blobs/{digest}"
            signed = {"Authorization": auth.sign(SECRET, "GET", route, "bytes=0-1048575"), "Range": "bytes=0-1048575"}
            response = httpx.get(edge.url + route, headers=signed, timeout=60)
            assert response.status_code == 206
            assert response.content == path.read_bytes()[:MIB]
            # 12 MiB at 4 MB/s: the fill is far from verified when its first MiB has been sent.
            assert edge.metrics().value("mirror_fills_total") == 0
            assert edge.metrics().value("mirror_zero_copy_bytes_total") == MIB  # sendfile, the byte after it held back
    finally:
        link.stop()


def test_when_the_owner_dies_mid_fill_the_others_fall_back_to_the_bucket_and_complete(registry_s3, seaweed, region_of, tmp_path):
    path = write_random_file(tmp_path / "blob", 12 * MIB + 321, seed=1402)
    digest = push_blob_file(registry_s3.url, "team/peers-kill", path)
    expected = path.read_bytes()
    # A slow link to the bucket, so the owner is still filling when it is killed.
    link, endpoint = _slow_link(seaweed, tmp_path)
    try:
        edges = region_of(s3_storage(endpoint, "registry"), 4)
        owning = owner(digest, [edge.host for edge in edges])
        victim = next(edge for edge in edges if edge.host == owning)
        others = [edge for edge in edges if edge is not victim]

        def get(edge: EdgeMirror) -> httpx.Response:
            return httpx.get(f"{edge.url}/v2/team/peers-kill/blobs/{digest}", timeout=120)

        with ThreadPoolExecutor(3) as pool:
            pending = [pool.submit(get, edge) for edge in others]
            deadline = time.monotonic() + 60
            while _total(others, "mirror_peer_bytes_total") < MIB:
                assert time.monotonic() < deadline, "the owner never started sending"
                time.sleep(0.05)
            victim.process.kill()
            responses = [future.result() for future in pending]
    finally:
        link.stop()

    for response in responses:
        assert response.status_code == 200
        assert response.content == expected
    assert _total(others, "mirror_peer_fallbacks_total") >= len(others)
    assert _total(others, "mirror_fills_total", result="ok") == len(others)
    assert _total(others, "mirror_peer_bytes_total") < len(others) * len(expected)


class _Impostor:
    """A loopback server posing as a peer: answers every peer request with the right length of wrong bytes."""

    def __init__(self) -> None:
        self.corrupt = b""
        self.requests = 0
        impostor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                impostor.requests += 1
                body = impostor.corrupt
                first, _, last = self.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
                start, end = int(first), min(len(body), int(last) + 1 if last else len(body))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(body)}")
                self.send_header("Content-Length", str(end - start))
                self.end_headers()
                self.wfile.write(body[start:end])

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve_corrupted(self, content: bytes) -> None:
        corrupt = bytearray(content)
        corrupt[len(corrupt) // 2] ^= 0xFF
        self.corrupt = bytes(corrupt)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def impostor_owned_blob(registry_s3) -> Iterator[tuple[str, bytes, _Impostor, int]]:
    """A blob in the bucket, an impostor serving a corrupt copy of it, and the port of an edge-to-be such that the
    impostor owns the blob in the region {edge, impostor}."""
    port = free_port()
    impostor = _Impostor()
    rng = random.Random(1403)
    while True:
        content = rng.randbytes(2 * MIB + 7)
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        if owner(digest, [f"127.0.0.1:{port}", impostor.host]) == impostor.host:
            break
    impostor.serve_corrupted(content)
    push_blob(registry_s3.url, "team/peers-corrupt", content)
    try:
        yield digest, content, impostor, port
    finally:
        impostor.close()


def _transfer_fails(url: str) -> bool:
    try:
        with httpx.stream("GET", url, timeout=60) as response:
            received = sum(len(chunk) for chunk in response.iter_bytes())
            return response.status_code != 200 or received < int(response.headers["Content-Length"])
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return True


def test_corrupt_bytes_from_a_peer_are_not_committed_and_the_retry_reads_the_bucket(seaweed, impostor_owned_blob, tmp_path):
    digest, content, impostor, port = impostor_owned_blob
    peers = {**PEERS, "addresses": [f"127.0.0.1:{port}", impostor.host]}
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), port=port, fill=FILL, peers=peers) as edge:
        url = f"{edge.url}/v2/team/peers-corrupt/blobs/{digest}"
        assert _transfer_fails(url)
        assert impostor.requests > 0
        first = edge.metrics()
        assert first.value("mirror_fills_total", result="digest_mismatch") == 1
        assert first.value("mirror_fills_total", result="ok") == 0

        retried = httpx.get(url, timeout=60)
        assert retried.status_code == 200
        assert retried.content == content
        after = edge.metrics()
        assert after.value("mirror_peer_fallbacks_total", reason="refill") == 1
        assert after.value("mirror_backend_bytes_total", op="read_range") >= len(content)
        assert after.value("mirror_fills_total", result="ok") == 1


def test_a_peer_request_is_served_from_the_bucket_never_forwarded(seaweed, impostor_owned_blob, tmp_path):
    digest, content, impostor, port = impostor_owned_blob
    peers = {**PEERS, "addresses": [f"127.0.0.1:{port}", impostor.host]}
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), port=port, fill=FILL, peers=peers) as edge:
        path = f"/_peer/blobs/{digest}"
        signed = {"Authorization": auth.sign(SECRET, "GET", path, "bytes=0-"), "Range": "bytes=0-"}
        response = httpx.get(edge.url + path, headers=signed, timeout=60)
        assert response.status_code == 206
        assert response.content == content
        assert impostor.requests == 0


def test_the_peer_endpoint_needs_the_region_secret(seaweed, impostor_owned_blob, tmp_path):
    digest, _, impostor, port = impostor_owned_blob
    peers = {**PEERS, "addresses": [f"127.0.0.1:{port}", impostor.host]}
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), port=port, peers=peers) as edge:
        path = f"/_peer/blobs/{digest}"
        unsigned = httpx.get(edge.url + path, timeout=30)
        forged = httpx.get(edge.url + path, headers={"Authorization": auth.sign("some-other-secret-value", "GET", path, "")}, timeout=30)
        for response in (unsigned, forged):
            assert response.status_code == 401
            assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert edge.metrics().value("mirror_backend_bytes_total", op="read_range") == 0


def test_without_peers_there_is_no_peer_endpoint(seaweed, impostor_owned_blob, tmp_path):
    digest, *_ = impostor_owned_blob
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry")) as edge:
        path = f"/_peer/blobs/{digest}"
        response = httpx.get(edge.url + path, headers={"Authorization": auth.sign(SECRET, "GET", path, "")}, timeout=30)
        assert response.status_code == 404
