"""The HTTP server: hypercorn, with the edge's timeouts and connection limits, and two fixes to its connection life.

hypercorn 0.18 keeps a connection object alive after its client has gone in two cases, which a registry
mirror under load hits all the time (clients that close keep-alive connections, pulls cut short):

- A client closes a keep-alive connection after its response: hypercorn had already armed its keep-alive
  timer and waits for it (``keep_alive_timeout``) before it closes the socket, so the socket sits in
  CLOSE_WAIT and the connection's task lives on for that long.
- A response keeps sending after the client hung up: every send re-raises the same stored
  ``ConnectionResetError``, whose traceback grows by one frame holding the chunk just sent, so the whole rest
  of the response is kept in memory until the timer above ends (this was issue 16's 4 GiB).

`EdgeConnection` ends a connection as soon as its client has gone (no keep-alive timer once the reader has
ended), drops sends to a closed connection without raising, admits connections by the limits of
`mirror.admission` (in all, per client address, a probe reserve), gives each request head ``header_timeout``
(then 408 and close), and sets ``TCP_USER_TIMEOUT`` so the kernel cuts a connection whose sent data stays
unacknowledged (a client that stopped reading, or vanished without a reset); a connection closed before its head
came ends at once (not at ``header_timeout``), and one still busy at shutdown when hypercorn's ``graceful_timeout``
runs out is cut without an error logged (`EdgeConnection.run`). It also carries out the file ranges
of zero-copy responses (`mirror.sendfile`) with `mirror.sendrange`. `HTTP11Only` keeps the plain port to HTTP/1.1
(HTTP/2 only by TLS ALPN). The request-body read timeout is `mirror.api.connection`'s.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from ssl import SSLError
from typing import Any, Awaitable, Callable

import hypercorn.asyncio.run
import hypercorn.protocol
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import AsyncioSingleTask, WorkerContext
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import AppWrapper, ASGIReceiveCallable, ASGISendCallable, LifespanState, Scope

from mirror import allocator, metrics, sendfile
from mirror.admission import HEADER_TIMEOUT, LIMITED, WIDE_READS, Admission, Admitted
from mirror.config import HttpConfig
from mirror.sendfile import Cork, EdgeH11Protocol, SendFile
from mirror.sendrange import send_range, until_lost


# The most one read of a connection takes (hypercorn reads 64 KiB): a pushed body arrives in fewer, larger reads,
# each a round through the read loop, the stream's flow control and h11 — over a quarter of a push's CPU at 64 KiB.
# A read returns what is buffered (the stream pauses its socket beyond 128 KiB), never waits for more.
RECEIVE_SIZE = 1024 * 1024
# The read window of a connection while an upload's body comes in (asked for by the app, `WIDE_READS`, once the
# request is authorized): the stream pauses its socket past twice this, and one socket read takes up to this.
# asyncio's defaults (64 KiB, so a pause past 128 KiB; 256 KiB a read) make every 256 KiB of a pushed body a round
# of pause, resume and h11; at 1 MiB the server spent about a quarter less CPU per GiB of body (0.70-0.82 against
# 0.93-1.21 CPU-s/GiB, load/floorstack.py with a sender as fast as the server's reads). It holds
# up to 3 MiB per such connection instead of 384 KiB, so only uploads have it, only until their response, and only
# `UPLOAD_WINDOWS` connections at once (192 MiB at most); the others read through asyncio's window.
UPLOAD_READ_WINDOW = 1024 * 1024
UPLOAD_WINDOWS = 64
# asyncio's own window (streams._DEFAULT_LIMIT, and a plain transport's read), given back after an upload.
STREAM_LIMIT = 64 * 1024
SOCKET_READ = 256 * 1024
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class EdgeConnection(TCPServer):
    """hypercorn's per-connection server, ended as soon as its client has gone, admitted by the connection
    limits (`mirror.admission`), and given ``header_timeout`` for each request head."""

    admission = Admission(1024, 64)
    wide_open = 0  # connections reading through an upload's window now
    send_timeout = 60.0
    header_timeout = 10.0

    def __init__(
        self, app: AppWrapper, loop: asyncio.AbstractEventLoop, config: HypercornConfig, context: WorkerContext,
        state: LifespanState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(app, loop, config, context, state, reader, writer)
        self._reader_done = False
        self._between_requests = True  # no request head parsed since the last response (or since accept)
        self._head_timer = AsyncioSingleTask()
        self._timing_head = False
        self._limited = False
        self._lost: asyncio.Task[None] | None = None  # completes when the connection is lost (zero-copy sends)
        self._wide = False  # reading through an upload's window (`widen_reads`)

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername")
        admitted = self.admission.admit(str(peer[0]) if peer else "")
        if not isinstance(admitted, Admitted):
            metrics.rejected_connections.labels(admitted).inc()
            self.writer.transport.abort()
            return
        metrics.open_connections.set(self.admission.open)
        if admitted.limited is not None:
            self._limited = True
            self.app = _ScopeExtension(self.app, LIMITED, {"reason": admitted.limited})
        else:
            self.app = _ScopeExtension(self.app, WIDE_READS, {"widen": self.widen_reads})
        try:
            sock = self.writer.get_extra_info("socket")
            if sock is not None and hasattr(socket, "TCP_USER_TIMEOUT"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(self.send_timeout * 1000))
            await super().run()
        except asyncio.CancelledError:
            if not self.context.terminated.is_set():
                raise
            # Shut down with this connection still busy after graceful_timeout: hypercorn cancels it. That is its
            # end, not an error: cut it and return, as Python 3.12 does, for 3.11's StreamReaderProtocol logs a
            # cancelled connection task as an unhandled exception at ERROR (CPython gh-113538).
            self.writer.transport.abort()
        finally:
            self.admission.release(admitted)
            self._narrow_reads()
            metrics.open_connections.set(self.admission.open)
            await self._stop_head_timer()
            if self._lost is not None:
                self._lost.cancel()

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, SendFile):
            await self._send_file(event)
            return
        if isinstance(event, Cork):
            await self._cork(event.on)
            return
        if isinstance(event, RawData) and self.writer.transport.is_closing():
            # The client is gone. Tell the app as hypercorn does when a write fails (``http.disconnect``), and
            # let it see that before its next send; raising the stored error again would keep this data.
            await self.protocol.handle(Closed())
            await asyncio.sleep(0)
            return
        if isinstance(event, Updated):
            self._between_requests = event.idle
            if event.idle:
                self._narrow_reads()  # an upload's window ends with its response
            if not event.idle:
                await self._stop_head_timer()  # the head is in; its body is under read_timeout
            elif self._reader_done:
                return  # no next request can come: do not arm the keep-alive timer
            elif self._limited:
                await self._close()  # a limited connection serves one request (a probe)
                return
        await super().protocol_send(event)

    async def _send_file(self, event: SendFile) -> None:
        """Hand a file range to the kernel (``sendfile``); what went before it is flushed first. A range cut
        short (the client gone, or the file shorter than it should be) ends the connection: the response
        cannot be completed, and the framing would be wrong if it went on."""
        async with self.send_lock:
            transport = self.writer.transport
            sent = -1
            if not transport.is_closing():
                try:
                    await self.writer.drain()
                    if self._lost is None:
                        self._lost = asyncio.ensure_future(until_lost(self.writer))
                    sent = await send_range(self.loop, self.writer, event.file, event.offset, event.count, self._lost)
                except (OSError, RuntimeError):
                    sent = -1
            if sent != event.count:
                transport.abort()
                await self.protocol.handle(Closed())
                await asyncio.sleep(0)

    def widen_reads(self) -> None:
        """Read this connection with `UPLOAD_READ_WINDOW` until its current response is sent, if fewer than
        `UPLOAD_WINDOWS` connections do now."""
        if self._wide or EdgeConnection.wide_open >= UPLOAD_WINDOWS:
            return
        EdgeConnection.wide_open += 1
        self._wide = True
        self._set_read_window(UPLOAD_READ_WINDOW, UPLOAD_READ_WINDOW)

    def _narrow_reads(self) -> None:
        if self._wide:
            EdgeConnection.wide_open -= 1
            self._wide = False
            self._set_read_window(STREAM_LIMIT, SOCKET_READ)

    def _set_read_window(self, limit: int, read: int) -> None:
        # asyncio has no setter for either: the stream's limit is what start_server's `limit` sets (hypercorn passes
        # none), and a plain socket transport reads `max_size` at a time (a TLS transport has none: left as it is).
        self.reader._limit = limit  # type: ignore[attr-defined]  # private: asyncio has no public setter
        if hasattr(self.writer.transport, "max_size"):
            self.writer.transport.max_size = read

    async def _cork(self, on: bool) -> None:
        """TCP_CORK on or off, after every write before it (releasing it sends what it held at once)."""
        async with self.send_lock:
            sock = self.writer.get_extra_info("socket")
            if sock is not None and hasattr(socket, "TCP_CORK") and not self.writer.transport.is_closing():
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))
                except OSError:
                    pass  # the client has gone: the read loop ends the connection

    async def _read_data(self) -> None:
        """hypercorn's read loop, which also times request heads: from accept to the first request's head,
        and (HTTP/1.1) from the first byte of each further request to its head. An idle keep-alive connection
        is under keep_alive_timeout instead (hypercorn's idle timer)."""
        await self._start_head_timer()
        while not self.reader.at_eof():
            try:
                data = await self.reader.read(RECEIVE_SIZE)
            except (ConnectionError, OSError, SSLError):
                break
            if data and self._between_requests and not self._timing_head and self._speaks_http11():
                await self._start_head_timer()
            await self.protocol.handle(RawData(data))
        await self.protocol.handle(Closed())
        self._reader_done = True
        await self.idle_task.stop()
        await self._stop_head_timer()  # a head that never came: the connection ends now, not at header_timeout

    async def _start_head_timer(self) -> None:
        self._timing_head = True
        await self._head_timer.restart(self._task_group, self._head_timeout)

    async def _stop_head_timer(self) -> None:
        if self._timing_head:
            self._timing_head = False
            await self._head_timer.stop()

    def _speaks_http11(self) -> bool:
        return isinstance(self.protocol.protocol, H11Protocol)

    async def _head_timeout(self) -> None:
        await asyncio.sleep(self.header_timeout)
        metrics.rejected_connections.labels(HEADER_TIMEOUT).inc()
        if self._speaks_http11() and not self.writer.transport.is_closing():
            self.writer.write(REQUEST_TIMEOUT)  # between requests: nothing else is being written
        self._timing_head = False  # this task ends the connection: nothing may cancel it now
        await asyncio.shield(self._initiate_server_close())


class _ScopeExtension:
    """Puts one extension into the ASGI scope of each request of a connection (HTTP and WebSocket; a connection never
    carries lifespan): `LIMITED` marks a limited connection's requests (admitted into the probe reserve), which the
    app (`mirror.api.connection.ConnectionLimits`) serves only on probe paths; `WIDE_READS` offers the others the
    upload's read window."""

    def __init__(self, app: AppWrapper, name: str, value: dict[str, Any]) -> None:
        self.app = app
        self.name = name
        self.value = value

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable,
        sync_spawn: Callable[..., Any], call_soon: Callable[..., Any],
    ) -> None:
        if scope["type"] != "lifespan":
            scope["extensions"][self.name] = self.value
        await self.app(scope, receive, send, sync_spawn, call_soon)


class HTTP11Only(EdgeH11Protocol):
    """HTTP/1.1 without hypercorn's switches to cleartext HTTP/2 (h2c).

    Registry clients speak HTTP/1.1 on plain HTTP; HTTP/2 comes with TLS, chosen by ALPN (hypercorn's
    `H2Protocol`, untouched). An ``Upgrade: h2c`` header is ignored (RFC 9110 section 7.8 lets a server do so)
    and the request is answered in HTTP/1.1; the HTTP/2 connection preface (prior knowledge) is answered 505
    and the connection closed. One protocol on the plain port is one set of limits to get right.
    """

    _refused = False

    async def _check_protocol(self, event: Any) -> None:
        if event.method == b"PRI" and event.target == b"*" and event.http_version == b"2.0":
            self._refused = True
            await self._send_error_response(505)
            await self.send(Closed())

    async def _create_stream(self, request: Any) -> None:
        if not self._refused:
            await super()._create_stream(request)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hypercorn_config(settings: HttpConfig) -> HypercornConfig:
    """The API server's settings: bind, TLS, keep-alive timeout and listen backlog."""
    server = HypercornConfig()
    server.bind = [_bind(settings.host, settings.port)]
    if settings.certfile:
        server.certfile, server.keyfile = settings.certfile, settings.keyfile
    server.keep_alive_timeout = settings.keep_alive_timeout
    server.backlog = settings.backlog
    server.ssl_handshake_timeout = settings.header_timeout  # a TLS handshake is part of getting the head in
    server.graceful_timeout = 5
    server.accesslog = None
    server.errorlog = logging.getLogger("hypercorn.error")
    return server


async def serve(app: Any, metrics_app: Any, settings: HttpConfig, shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
    """Serve `app` (and `metrics_app` on ``http.metrics_addr`` when set) until `shutdown_trigger` returns.

    Connections to both count against ``http.max_connections``. The process's allocator is set for moving
    bytes first (`mirror.allocator`).
    """
    allocator.tune()  # before the first body arrives: pieces of a MiB reuse the heap's pages (mirror/allocator.py)
    EdgeConnection.admission = Admission(settings.max_connections, settings.max_connections_per_client)
    EdgeConnection.send_timeout = settings.send_timeout
    EdgeConnection.header_timeout = settings.header_timeout
    # Neither name is re-exported by its module (attr-defined), but that is where hypercorn looks them up.
    hypercorn.asyncio.run.TCPServer = EdgeConnection  # type: ignore[attr-defined]  # hypercorn has no hook for it
    sendfile.install()
    hypercorn.protocol.H11Protocol = HTTP11Only  # type: ignore[attr-defined]  # ProtocolWrapper looks it up here
    servers = [hypercorn_serve(app, hypercorn_config(settings), shutdown_trigger=shutdown_trigger)]
    if settings.metrics_addr:
        metrics_server = HypercornConfig()
        metrics_server.bind = [_bind(*settings.metrics_addr)]
        metrics_server.accesslog = None
        servers.append(hypercorn_serve(metrics_app, metrics_server, shutdown_trigger=shutdown_trigger))
    await asyncio.gather(*servers)
