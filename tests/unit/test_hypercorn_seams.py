"""hypercorn has no hooks for what `mirror/server.py` and `mirror/sendfile.py` change, so they assign their
classes into hypercorn's modules. These tests pin exactly what that relies on, so a hypercorn upgrade that moves
a lookup fails here, by name, instead of silently serving without the edge's limits."""

import asyncio
import contextlib
from importlib.metadata import version
from typing import AsyncIterator

import hypercorn.asyncio.run
import hypercorn.protocol
import hypercorn.protocol.h11

from mirror import server
from mirror.admission import WIDE_READS
from mirror.config.settings import HttpConfig
from mirror.sendfile import ZEROCOPY_SEND
from tests.support.ports import free_port

H2C_UPGRADE = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"


def test_hypercorn_is_the_minor_version_the_seams_were_written_for():
    assert version("hypercorn").startswith("0.18."), "re-check mirror/server.py and mirror/sendfile.py, then this pin"


def test_the_names_the_edge_assigns_are_the_ones_hypercorn_looks_up():
    assert "TCPServer" in hypercorn.asyncio.run.__dict__  # run's connection callback builds TCPServer(...)
    assert "H11Protocol" in hypercorn.protocol.__dict__  # ProtocolWrapper builds H11Protocol(...)
    assert "HTTPStream" in hypercorn.protocol.h11.__dict__  # H11Protocol._create_stream builds HTTPStream(...)


@contextlib.asynccontextmanager
async def _connected(app) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """`app` served by the edge's own `server.serve` on a free port, and one client connection to it; the
    connection is closed and the server stopped after."""
    port = free_port()
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve(app, app, HttpConfig(addr=("127.0.0.1", port)), stop.wait))
    try:
        for _ in range(200):  # bounded: the listener is up within a few event-loop turns
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.01)
        try:
            yield reader, writer
        finally:
            writer.close()
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


async def _served(request: bytes) -> tuple[bytes, dict]:
    seen: dict = {}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        seen["extensions"] = dict(scope.get("extensions") or {})
        seen["admitted"] = server.EdgeConnection.admission.open
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async with _connected(app) as (reader, writer):
        writer.write(request)
        try:
            answer = await asyncio.wait_for(reader.read(), 5)
        except TimeoutError:
            answer = b"no HTTP/1.1 answer (the connection switched protocols)"
    return answer, seen


def test_served_connections_are_the_edges_own_admitted_zero_copy_http11_only():
    request = b"GET / HTTP/1.1\r\nHost: edge\r\n" + H2C_UPGRADE + b"\r\n"
    answer, seen = asyncio.run(_served(request.replace(b"Connection: Upgrade", b"Connection: close, Upgrade")))
    assert seen["admitted"] == 1, "EdgeConnection (mirror/server.py) did not admit the connection"
    assert ZEROCOPY_SEND in seen["extensions"], "EdgeHTTPStream (mirror/sendfile.py) did not build the stream"
    assert answer.startswith(b"HTTP/1.1 200"), f"HTTP11Only did not ignore the h2c upgrade: {answer[:40]!r}"


async def _two_requests_on_one_connection(first: bytes, second: bytes) -> tuple[list[bytes], list[dict]]:
    """Serves an app that widens its reads whenever a request asks for it (as the upload handlers do) and records
    its connection's read window at the start of each request, after widening, and after the body."""
    seen: list[dict] = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        widen = scope["extensions"][WIDE_READS]["widen"]
        connection = widen.__self__  # the EdgeConnection the extension belongs to

        def window() -> tuple[int, int]:
            return connection.reader._limit, connection.writer.transport.max_size

        record = {"at_start": window()}
        if scope["method"] == "PATCH":
            widen()
        record["widened"] = window()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        record["body"] = len(body)
        seen.append(record)
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    answers = []
    async with _connected(app) as (reader, writer):
        for request in (first, second):
            writer.write(request)
            answers.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
    return answers, seen


def test_an_upload_reads_its_body_through_a_wide_window_that_ends_with_its_response():
    body = b"x" * (3 * 1024 * 1024)
    patch = b"PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: edge\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    get = b"GET /v2/ HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
    answers, seen = asyncio.run(_two_requests_on_one_connection(patch, get))
    assert [answer.split(b"\r\n")[0] for answer in answers] == [b"HTTP/1.1 202 "] * 2
    default = (server.STREAM_LIMIT, server.SOCKET_READ)
    assert seen[0]["at_start"] == default
    assert seen[0]["widened"] == (server.UPLOAD_READ_WINDOW, server.UPLOAD_READ_WINDOW)
    assert seen[0]["body"] == len(body)
    assert seen[1]["at_start"] == default, "the next request on the connection kept the upload's window"
    assert server.EdgeConnection.wide_open == 0


def test_an_upload_reads_through_asyncios_window_while_every_upload_window_is_taken(monkeypatch):
    monkeypatch.setattr(server, "UPLOAD_WINDOWS", 0)
    patch = b"PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: edge\r\nContent-Length: 2\r\n\r\nab"
    get = b"GET /v2/ HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
    answers, seen = asyncio.run(_two_requests_on_one_connection(patch, get))
    assert seen[0]["widened"] == (server.STREAM_LIMIT, server.SOCKET_READ)
    assert seen[0]["body"] == 2
