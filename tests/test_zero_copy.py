"""Cached blobs go out through sendfile on plain HTTP/1.1 (`mirror.sendfile`), framed exactly as before.

The zero-copy path bypasses the bytes h11 would otherwise see, so these tests read raw HTTP/1.1 off one
keep-alive socket: a wrong Content-Length accounting would shift every answer after the first.
"""

from __future__ import annotations

import hashlib
import os
import socket

import httpx
import pytest

from mirror.api.responses import SENDFILE_SEGMENT
from tests.support.blobs import push_blob
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage
from tests.support.hangups import request_bytes

MIB = 1024 * 1024
SIZE = SENDFILE_SEGMENT + 4 * MIB + 12345  # two segments, the second not a whole one


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("zero-copy")
    data = os.urandom(SIZE)
    with EdgeMirror(workdir / "edge", filesystem_storage(workdir / "data"), auth=ANONYMOUS_PUSH) as edge:
        digest = push_blob(edge.url, "team/zero", data)
        assert httpx.get(f"{edge.url}/v2/team/zero/blobs/{digest}", timeout=60).content == data  # now cached
        yield edge, digest, data


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length from `sock`; bytes past it stay in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a full header block"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {key.lower(): value.strip() for key, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(4 * MIB)
        assert chunk, f"connection closed after {len(body)} of {length} body bytes"
        body += chunk
    buffer[:] = body[length:]
    return status, headers, bytes(body[:length])


def test_a_cached_blob_goes_out_through_sendfile_byte_for_byte(cached):
    edge, digest, data = cached
    before = edge.metrics().value("mirror_zero_copy_bytes_total")
    response = httpx.get(f"{edge.url}/v2/team/zero/blobs/{digest}", timeout=60)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == digest.removeprefix("sha256:")
    assert edge.metrics().value("mirror_zero_copy_bytes_total") - before == SIZE


def test_full_range_and_head_answers_share_one_keep_alive_connection(cached):
    edge, digest, data = cached
    path = f"/v2/team/zero/blobs/{digest}"
    buffer = bytearray()
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as sock:
        sock.sendall(request_bytes(path))
        status, _, body = _read_response(sock, buffer)
        assert (status, body) == (200, data)
        sock.sendall(request_bytes(path, {"Range": f"bytes={9 * MIB}-{17 * MIB + 6}"}))
        status, headers, body = _read_response(sock, buffer)
        assert (status, body) == (206, data[9 * MIB:17 * MIB + 7])
        assert headers["content-range"] == f"bytes {9 * MIB}-{17 * MIB + 6}/{SIZE}"
        sock.sendall(request_bytes(path, {"Range": "bytes=-51"}))
        status, _, body = _read_response(sock, buffer)
        assert (status, body) == (206, data[-51:])
        sock.sendall(request_bytes(path).replace(b"GET ", b"HEAD ", 1))
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and f"content-length: {SIZE}".encode() in head.lower()
        assert rest == b"", "a HEAD answer carried body bytes"
        sock.sendall(request_bytes("/v2/"))
        buffer[:] = b""
        status, _, _ = _read_response(sock, buffer)
        assert status == 200


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """An edge with blobs pushed through it and never read: each first GET is served from its fill."""
    workdir = tmp_path_factory.mktemp("zero-copy-fill")
    blobs = [os.urandom(SIZE - index) for index in range(3)]
    with EdgeMirror(workdir / "edge", filesystem_storage(workdir / "data"), auth=ANONYMOUS_PUSH) as edge:
        yield edge, [(push_blob(edge.url, "team/cold", data), data) for data in blobs]


def test_a_blob_being_filled_goes_out_through_sendfile_byte_for_byte(cold):
    edge, blobs = cold
    digest, data = blobs[0]
    before = edge.metrics()
    response = httpx.get(f"{edge.url}/v2/team/cold/blobs/{digest}", timeout=60)
    after = edge.metrics()
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == digest.removeprefix("sha256:")
    served = after.value("mirror_served_bytes_total", source="fill") - before.value("mirror_served_bytes_total", source="fill")
    assert served == len(data)
    assert after.value("mirror_zero_copy_bytes_total") - before.value("mirror_zero_copy_bytes_total") == len(data)


def test_answers_from_fills_in_progress_share_one_keep_alive_connection(cold):
    edge, blobs = cold
    (whole, whole_data), (ranged, ranged_data) = blobs[1], blobs[2]
    buffer = bytearray()
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as sock:
        sock.sendall(request_bytes(f"/v2/team/cold/blobs/{whole}"))
        status, _, body = _read_response(sock, buffer)
        assert (status, body) == (200, whole_data)
        sock.sendall(request_bytes(f"/v2/team/cold/blobs/{ranged}", {"Range": f"bytes={3 * MIB}-{11 * MIB + 4}"}))
        status, headers, body = _read_response(sock, buffer)
        assert (status, body) == (206, ranged_data[3 * MIB:11 * MIB + 5])
        assert headers["content-range"] == f"bytes {3 * MIB}-{11 * MIB + 4}/{len(ranged_data)}"
        sock.sendall(request_bytes("/v2/"))
        status, _, _ = _read_response(sock, buffer)
        assert status == 200
