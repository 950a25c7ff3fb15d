"""Every request body is under ``http.read_timeout``, whatever speaks (issue 19 item 3): HTTP/1.1 with a
Content-Length, chunked, or both (refused), and HTTP/2 over TLS without a length. The plain port speaks
HTTP/1.1 only: no h2c by prior knowledge or by Upgrade."""

from __future__ import annotations

import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage
from tests.support.sockets import read_until_closed
from tests.support.tokens import TestCA

READ_TIMEOUT = {"read_timeout": "1s"}
WAIT = 20  # how long a test waits for an answer that should come after about 1 s


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("body-timeouts")
    with EdgeMirror(workdir / "edge", filesystem_storage(workdir / "data"), http=READ_TIMEOUT, auth=ANONYMOUS_PUSH) as edge:
        yield edge


@pytest.fixture(scope="module")
def tls_edge(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("body-timeouts-tls")
    ca = TestCA("body-timeouts-ca")
    (workdir / "tls").mkdir()
    certfile, keyfile = ca.server_files(workdir / "tls")
    (workdir / "ca.pem").write_bytes(ca.pem())
    http = {**READ_TIMEOUT, "certfile": str(certfile), "keyfile": str(keyfile)}
    with EdgeMirror(workdir / "edge", filesystem_storage(workdir / "data"), http=http, auth=ANONYMOUS_PUSH) as edge:
        yield edge, workdir / "ca.pem"


def _upload(url: str, name: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    response = httpx.post(f"{url}/v2/{name}/blobs/uploads/", **kwargs)
    assert response.status_code == 202
    return response.headers["location"]


def _answer(sock: socket.socket) -> bytes:
    """Everything the edge sends until it closes the connection (or WAIT passes)."""
    return read_until_closed(sock, WAIT)


def _raw(edge: EdgeMirror, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", edge.port), timeout=WAIT) as sock:
        sock.sendall(request)
        return _answer(sock)


def test_content_length_with_chunked_is_refused_400_and_the_connection_closed(edge):
    location = _upload(edge.url, "timeouts/both")
    answer = _raw(
        edge,
        f"PATCH {location} HTTP/1.1\r\nHost: edge\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"connection: close" in answer.lower()


def test_chunked_body_that_stalls_is_answered_408(edge):
    location = _upload(edge.url, "timeouts/chunked")
    answer = _raw(
        edge,
        f"PATCH {location} HTTP/1.1\r\nHost: edge\r\nContent-Type: application/octet-stream\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_plain_port_refuses_http2_prior_knowledge(edge):
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    answer = _raw(edge, connection.data_to_send())
    assert answer.startswith(b"HTTP/1.1 505"), answer[:200]


def test_plain_port_answers_an_h2c_upgrade_in_http11(edge):
    answer = _raw(
        edge,
        b"GET /v2/ HTTP/1.1\r\nHost: edge\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def _h2_stalled_patch(port: int, cafile: str, path: str, length: int | None = None) -> tuple[str | None, float]:
    """Over TLS with ALPN h2: PATCH `path` (announcing `length` bytes, or no length), one DATA frame, then
    nothing. Returns the response's :status (None if the connection ended without one) and the seconds it took."""
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            assert sock.selected_alpn_protocol() == "h2"
            connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            connection.initiate_connection()
            headers = [(":method", "PATCH"), (":path", path), (":scheme", "https"), (":authority", "edge"),
                       ("content-type", "application/octet-stream")]
            if length is not None:
                headers.append(("content-length", str(length)))
            connection.send_headers(1, headers)
            connection.send_data(1, b"hello")
            sock.sendall(connection.data_to_send())
            started = time.monotonic()
            sock.settimeout(WAIT)
            try:
                while data := sock.recv(65536):
                    for event in connection.receive_data(data):
                        if isinstance(event, h2.events.ResponseReceived):
                            return dict(event.headers)[b":status"].decode(), time.monotonic() - started
                    sock.sendall(connection.data_to_send())
            except TimeoutError:
                pass
            return None, time.monotonic() - started


def test_http2_body_without_length_that_stalls_is_answered_408(tls_edge):
    edge, cafile = tls_edge
    location = _upload(edge.url, "timeouts/h2", verify=ssl.create_default_context(cafile=str(cafile)))
    status, _ = _h2_stalled_patch(edge.port, str(cafile), location)
    assert status == "408"


def test_http2_request_refused_before_its_body_is_answered(tls_edge):
    edge, cafile = tls_edge
    unknown = "/v2/timeouts/h2/blobs/uploads/00000000000000000000000000000000"
    status, _ = _h2_stalled_patch(edge.port, str(cafile), unknown, length=1000)
    assert status == "404"
