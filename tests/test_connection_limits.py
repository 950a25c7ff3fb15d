"""One client must not take an edge away from every pod of its node (issue 19 item 4): connections are limited
per client address, request heads have their own short timeout, and the probes answer while the edge is full.
Two client addresses on loopback: 127.0.0.1 and 127.0.0.2."""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage
from tests.support.metrics import parse
from tests.support.sockets import read_until_closed

WAIT = 20  # how long a test waits for something that should happen within about a second
HTTP = {"max_connections": 8, "max_connections_per_client": 4, "header_timeout": "2s", "read_timeout": "60s"}
OTHER_CLIENT = "127.0.0.2"
SCRAPER = "127.0.0.9"  # the tests' own scrapes come from an address no test client uses


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("connection-limits")
    with EdgeMirror(workdir / "edge", filesystem_storage(workdir / "data"), http=HTTP, auth=ANONYMOUS_PUSH) as edge:
        yield edge


def _connect(edge: EdgeMirror, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(WAIT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", edge.port))
    return sock


def _ask(edge: EdgeMirror, path: str, source: str = "127.0.0.1") -> bytes:
    """GET `path` on a new connection; everything the edge sends until it closes."""
    with _connect(edge, source) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n".encode())
        return read_until_closed(sock, WAIT)


def _open_connections(edge: EdgeMirror) -> float:
    """Client connections open at the edge, the scrape's own not counted."""
    answer = _ask(edge, "/metrics", SCRAPER)
    return parse(answer.partition(b"\r\n\r\n")[2].decode()).value("mirror_open_connections") - 1


def _rejected(edge: EdgeMirror, reason: str) -> float:
    return edge.metrics().value("mirror_rejected_connections_total", reason=reason)


def _response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, read off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return data


def _wait_for(condition, timeout: float = WAIT) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _stalled_pushes(edge: EdgeMirror, count: int, source: str = "127.0.0.1") -> list[socket.socket]:
    """`count` manifest PUTs whose body stalls after one byte (held for read_timeout, 60 s)."""
    before = _open_connections(edge)
    socks = []
    for index in range(count):
        sock = _connect(edge, source)
        sock.sendall(
            f"PUT /v2/limits/stall/manifests/t{index} HTTP/1.1\r\nHost: edge\r\n"
            f"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 4000\r\n\r\n{{".encode()
        )
        socks.append(sock)
    assert _wait_for(lambda: _open_connections(edge) >= before + count)
    return socks


@pytest.fixture()
def settled(edge):
    """Every connection of an earlier test is gone before a test starts."""
    assert _wait_for(lambda: _open_connections(edge) == 0)
    return edge


def _close(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def test_stalled_pushes_from_one_address_leave_room_for_another_address(settled):
    edge = settled
    held = _stalled_pushes(edge, 4)  # max_connections_per_client is 4, max_connections 8
    try:
        assert _ask(edge, "/v2/", OTHER_CLIENT).startswith(b"HTTP/1.1 200")
        refused = _ask(edge, "/v2/")
        assert refused.startswith(b"HTTP/1.1 429"), refused[:200]
        assert b"TOOMANYREQUESTS" in refused
    finally:
        _close(held)
    assert _rejected(edge, "max_connections_per_client") >= 1


def test_half_sent_request_head_is_cut_after_the_header_timeout(settled):
    edge = settled
    before = _rejected(edge, "header_timeout")
    with _connect(edge) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: ed")  # keep_alive_timeout is 75 s, header_timeout 2 s
        answer = sock.recv(65536)
        assert sock.recv(65536) == b""
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert _rejected(edge, "header_timeout") == before + 1


def test_idle_keep_alive_connection_is_not_cut_by_the_header_timeout(settled):
    edge = settled
    with _connect(edge) as sock:
        request = b"GET /v2/ HTTP/1.1\r\nHost: edge\r\n\r\n"
        sock.sendall(request)
        assert _response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(3)  # over header_timeout (2 s), well under keep_alive_timeout (75 s)
        sock.sendall(request)
        assert _response(sock).startswith(b"HTTP/1.1 200")


def test_probes_answer_while_the_edge_is_full(settled):
    edge = settled
    held = _stalled_pushes(edge, 4) + _stalled_pushes(edge, 4, OTHER_CLIENT)  # all 8 of max_connections
    try:
        for path in ("/healthz", "/readyz", "/metrics"):
            answer = _ask(edge, path, OTHER_CLIENT)
            assert answer.startswith(b"HTTP/1.1 200"), (path, answer[:200])
        refused = _ask(edge, "/v2/", "127.0.0.3")
        assert refused.startswith(b"HTTP/1.1 503"), refused[:200]
    finally:
        _close(held)
    assert _rejected(edge, "max_connections") >= 1


def test_probes_answer_from_an_address_that_holds_its_share(settled):
    edge = settled
    held = _stalled_pushes(edge, 4)  # the kubelet shares its node's address with containerd and host pods
    try:
        assert _ask(edge, "/healthz").startswith(b"HTTP/1.1 200")
        assert _ask(edge, "/readyz").startswith(b"HTTP/1.1 200")
    finally:
        _close(held)


def test_connections_past_the_probe_reserve_are_closed_at_once(settled):
    edge = settled
    held = _stalled_pushes(edge, 4)
    # PROBE_RESERVE_PER_CLIENT limited connections, waiting for their heads (for header_timeout); connections
    # are admitted in the order they are accepted, so the next one from this address finds the reserve taken.
    limited = [_connect(edge) for _ in range(4)]
    try:
        assert _ask(edge, "/healthz") == b""
    finally:
        _close(held + limited)


def test_on_a_small_edge_one_address_still_leaves_room_for_another(tmp_path):
    # The review's case: max_connections = 4, four stalled pushes from one pod, per-client share left default.
    http = {"max_connections": 4, "read_timeout": "60s"}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), http=http, auth=ANONYMOUS_PUSH) as edge:
        held = [_connect(edge) for _ in range(4)]
        try:
            for index, sock in enumerate(held):
                sock.sendall(
                    f"PUT /v2/limits/small/manifests/t{index} HTTP/1.1\r\nHost: edge\r\n"
                    f"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 4000\r\n\r\n{{".encode()
                )
            # Connections are admitted in the order they are accepted: the address's share is half the cap.
            assert [sock.recv(12) for sock in held[2:]] == [b"HTTP/1.1 429"] * 2
            assert _ask(edge, "/v2/", OTHER_CLIENT).startswith(b"HTTP/1.1 200")
        finally:
            _close(held)


def test_a_connection_closed_before_its_request_head_gives_its_slot_back_at_once(tmp_path):
    # One connection per address, and a header_timeout far past the wait: the slot must come back when the
    # client goes (a TCP probe, a client that gave up), not when the head's timer runs out.
    http = {"max_connections_per_client": 1, "header_timeout": "60s"}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), http=http, auth=ANONYMOUS_PUSH) as edge:
        _connect(edge).close()
        assert _wait_for(lambda: _ask(edge, "/v2/").startswith(b"HTTP/1.1 200"))
