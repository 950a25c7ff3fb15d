"""SIGTERM ends an edge cleanly whatever its connections are doing: it exits 0 and logs no ERROR and no traceback,
with a response its client stopped reading mid-body, an idle keep-alive connection, or a request head half sent
(hypercorn gives open connections ``graceful_timeout`` and then cancels them)."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.blobs import push_blob
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage
from tests.support.sockets import read_until_closed

WAIT = 20  # how long a test waits for an answer that should come at once
BLOB = os.urandom(16 * 1024 * 1024)  # far more than the socket buffers hold when the client reads none of it


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeMirror]:
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), auth=ANONYMOUS_PUSH) as edge:
        yield edge


def _connect(edge: EdgeMirror) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connect: the window stays small
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", edge.port))
    return sock


def _stop(edge: EdgeMirror) -> tuple[int, list[str]]:
    """SIGTERM the edge and wait for it (past its 5 s of grace however loaded the machine); its exit code and the log
    lines that report an error or a traceback."""
    assert edge.process is not None
    edge.process.send_signal(signal.SIGTERM)
    returncode = edge.process.wait(timeout=120)
    lines = edge.log_path.read_text(errors="replace").splitlines()
    return returncode, [line for line in lines if " ERROR " in line or "Traceback" in line]


def test_sigterm_with_a_response_left_mid_body_exits_0_and_logs_no_error(edge):
    digest = push_blob(edge.url, "shutdown/mid-body", BLOB)
    with _connect(edge) as sock:
        sock.sendall(f"GET /v2/shutdown/mid-body/blobs/{digest} HTTP/1.1\r\nHost: edge\r\n\r\n".encode())
        received = len(sock.recv(65536))  # the head and the first bytes; the rest is left unread
        returncode, errors = _stop(edge)
        received += len(read_until_closed(sock, WAIT))
    assert received < len(BLOB)  # the response was cut by the shutdown, not finished before it
    assert (returncode, errors) == (0, [])


def test_sigterm_with_an_idle_keep_alive_connection_exits_0_and_logs_no_error(edge):
    with _connect(edge) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: edge\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert _stop(edge) == (0, [])


def test_sigterm_with_a_request_head_half_sent_exits_0_and_logs_no_error(edge):
    with _connect(edge) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: edge\r\n")  # no blank line: the head is not complete
        assert _stop(edge) == (0, [])
