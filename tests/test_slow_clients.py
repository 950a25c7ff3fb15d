"""Clients that are slow, stall or never read are bounded by the edge's [http] timeouts and connection cap
(issue 16, issue 9 item 18), and a keep-alive connection a client closes is released at once."""

from __future__ import annotations

import os
import socket
import time

import httpx
import pytest

from tests.support.blobs import push_blob_file
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage
from tests.support.hangups import ProcessWatch, open_fds, request_bytes
from tests.support.waiting import wait_until

MIB = 1024 * 1024
BIG = 128 * MIB


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slow-clients")
    http = {"send_timeout": "2s", "read_timeout": "1s", "max_connections": 8}
    with EdgeMirror(workdir / "edge", filesystem_storage(workdir / "data"), http=http, auth=ANONYMOUS_PUSH) as edge:
        path = workdir / "big"
        with open(path, "wb") as file:
            for _ in range(BIG // MIB):
                file.write(os.urandom(MIB))
        digest = push_blob_file(edge.url, "team/slow", path)
        path.unlink()
        assert httpx.head(f"{edge.url}/v2/team/slow/blobs/{digest}").status_code == 200
        httpx.get(f"{edge.url}/v2/team/slow/blobs/{digest}", headers={"Range": "bytes=0-0"})
        yield edge, digest


def _gauge(edge: EdgeMirror, name: str) -> float:
    return edge.metrics().value(name)


def _connect(edge: EdgeMirror, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", edge.port))
    return sock


def test_slow_reader_holds_a_bounded_buffer_of_a_large_blob(edge):
    edge, digest = edge
    served_before = edge.metrics().value("mirror_served_bytes_total")
    sock = _connect(edge, receive_buffer=64 * 1024)
    read = 0
    with sock, ProcessWatch(edge.process.pid) as watch:
        sock.sendall(request_bytes(f"/v2/team/slow/blobs/{digest}"))
        for _ in range(6):  # 64 KiB a second
            read += len(sock.recv(64 * 1024))
            time.sleep(1)
        ahead = edge.metrics().value("mirror_served_bytes_total") - served_before - read
    growth = watch.peak - watch.samples[0]
    print(f"slow reader: read {read} bytes; the edge sent {ahead / MIB:.1f} MiB ahead; RSS +{growth / MIB:.1f} MiB")
    # The edge runs ahead of the reader by socket buffers and about one chunk, not by the blob.
    assert ahead <= 8 * MIB
    assert growth <= 16 * MIB


def test_client_that_stops_reading_is_cut_after_the_send_timeout(edge):
    edge, digest = edge
    sock = _connect(edge, receive_buffer=64 * 1024)
    with sock:
        sock.sendall(request_bytes(f"/v2/team/slow/blobs/{digest}"))
        sock.recv(1024)
        wait_until("the response in flight", lambda: _gauge(edge, "mirror_blob_responses_in_flight") == 1, 5)
        # send_timeout is 2s: the kernel aborts the connection once sent bytes stay unacknowledged that long.
        wait_until("the response ended", lambda: _gauge(edge, "mirror_blob_responses_in_flight") == 0, 20)
        with pytest.raises(OSError):
            while sock.recv(1 << 20):
                pass


def test_stalled_request_body_is_answered_408_after_the_read_timeout(edge):
    edge, _ = edge
    sock = _connect(edge)
    with sock:
        sock.sendall(
            b"PUT /v2/team/slow/manifests/stalled HTTP/1.1\r\nHost: edge\r\n"
            b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 4000\r\n\r\n{"
        )
        started = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert waited < 15


def test_connections_over_the_cap_are_refused_at_once(edge):
    edge, _ = edge
    # Connections of earlier requests may not have been released yet: start when only the scrape's own is open.
    wait_until("earlier connections released", lambda: _gauge(edge, "mirror_open_connections") <= 1, 10)
    held = [_connect(edge) for _ in range(4)]  # max_connections is 8: this address's share is half of it
    try:
        for sock in held:  # an answer on each shows the edge accepted and counted it (it stays open: keep-alive)
            sock.sendall(request_bytes("/v2/"))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "a held connection was not served"
        with _connect(edge) as extra:
            extra.sendall(request_bytes("/v2/"))
            answer = _recv_or_reset(extra)
            assert answer.startswith(b"HTTP/1.1 429"), "a connection over the cap was served"
    finally:
        for sock in held:
            sock.close()
    wait_until("served again", lambda: httpx.get(f"{edge.url}/v2/", timeout=5).status_code == 200, 10)
    assert edge.metrics().value("mirror_rejected_connections_total") >= 1


def _recv_or_reset(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def test_keep_alive_connection_closed_by_its_client_is_released_at_once(edge):
    edge, _ = edge
    pid = edge.process.pid
    before = open_fds(pid)
    for _ in range(20):
        with _connect(edge) as sock:
            sock.sendall(request_bytes("/v2/"))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # keep_alive_timeout is 75s: a connection kept for it would hold its descriptor (in CLOSE_WAIT) that long.
    wait_until("descriptors released", lambda: open_fds(pid) <= before, 5)
