"""Zero-copy responses: the ASGI ``http.response.zerocopysend`` extension on hypercorn's plain HTTP/1.1.

A cached blob is a verified file on local disk, so the fastest way to serve it is the kernel's ``sendfile``:
the bytes go from the page cache to the socket without ever entering Python. hypercorn 0.18 does not implement
the ASGI extension, so this module adds it, for plain (non-TLS) HTTP/1.1 connections only:

    app ── {"type": "http.response.zerocopysend", "file", "offset", "count", "more_body"} ──▶ `EdgeHTTPStream`
        ──▶ `FileBody` ──▶ `EdgeH11Protocol`: h11 frames it (``send_with_data_passthrough`` hands the segment
        back untouched, having counted its length against Content-Length) ──▶ `SendFile` event ──▶ the
        connection server (`mirror.server.EdgeConnection`) ──▶ `mirror.sendrange.send_range` (``os.sendfile``)

The app learns that the extension is there from ``scope["extensions"]`` (the ASGI way); where it is absent (TLS,
HTTP/2, an in-process test client) the app streams chunks as before. A start message may carry `BODY_FOLLOWS`
when its body's first send follows at once (a cached file): the socket is then corked (``TCP_CORK``, nginx's
``tcp_nopush``) from the head to the end of the response, so that the head leaves in one packet with the body's
first bytes instead of a packet of its own (on loopback every packet is delivered in the sender's system call). `install()` points hypercorn's HTTP/1.1
protocol at these classes; hypercorn is pinned to 0.18.x for that reason (as for `mirror.server`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, BinaryIO, Callable, Sequence, cast

import h11
import hypercorn.protocol
import hypercorn.protocol.h11
from hypercorn.config import Config
from hypercorn.events import Event, RawData
from hypercorn.protocol.events import Body
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.typing import (
    AppWrapper, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope, TaskGroup, WorkerContext,
)
from hypercorn.utils import suppress_body

ZEROCOPY_SEND = "http.response.zerocopysend"
BODY_FOLLOWS = "mirror.body_follows"  # in an http.response.start message: see above


@dataclass(frozen=True)
class Cork(Event):
    """Hold (`on`) or release the connection's partial packets, in order with what is sent around it."""

    on: bool


@dataclass(frozen=True)
class CorkStream(StreamEvent):
    """`Cork` as the stream sends it to its protocol."""

    on: bool = False


@dataclass(frozen=True)
class SendFile(Event):
    """`count` bytes of `file` from `offset`, for the connection server to hand to the kernel."""

    file: BinaryIO
    offset: int
    count: int

    def __len__(self) -> int:  # what h11 counts against Content-Length
        return self.count


@dataclass(frozen=True)
class FileBody(Body):
    """A response body segment that is a file range rather than bytes (``data`` stays empty)."""

    segment: SendFile | None = None


class _AdvertiseZeroCopy:
    """Wraps the app of one plain HTTP/1.1 stream so its scope lists the extension."""

    def __init__(self, app: AppWrapper) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable,
        sync_spawn: Callable[..., Any], call_soon: Callable[..., Any],
    ) -> None:
        if scope["type"] == "http":  # always, on an HTTP stream
            scope["extensions"][ZEROCOPY_SEND] = {}
        await self.app(scope, receive, send, sync_spawn, call_soon)


class EdgeHTTPStream(HTTPStream):
    """hypercorn's HTTP stream, which also accepts ``http.response.zerocopysend`` messages."""

    def __init__(
        self, app: AppWrapper, config: Config, context: WorkerContext, task_group: TaskGroup, ssl: bool,
        client: tuple[str, int] | None, server: tuple[str, int] | None, send: Callable[[StreamEvent], Awaitable[None]],
        stream_id: int,
    ) -> None:
        wrapped = app if ssl else _AdvertiseZeroCopy(app)
        super().__init__(wrapped, config, context, task_group, ssl, client, server, send, stream_id)

    corked = False

    async def app_send(self, message: ASGISendEvent | None) -> None:
        if message is None or message["type"] != ZEROCOPY_SEND:
            if message is not None and message["type"] == "http.response.start" and message.get(BODY_FOLLOWS) \
                    and self.state == ASGIHTTPState.REQUEST:
                self.corked = True
                await self.send(CorkStream(stream_id=self.stream_id, on=True))
            await super().app_send(message)
            if self.corked and (message is None or self.state == ASGIHTTPState.CLOSED):
                self.corked = False
                await self.send(CorkStream(stream_id=self.stream_id, on=False))
            return
        zerocopy = cast(dict[str, Any], message)  # an extension message: hypercorn's event types do not list it
        if self.state == ASGIHTTPState.RESPONSE and not suppress_body(self.scope["method"], int(self.response["status"])):
            count = int(zerocopy.get("count") or 0)
            if count > 0:
                segment = SendFile(zerocopy["file"], int(zerocopy.get("offset") or 0), count)
                await self.send(FileBody(stream_id=self.stream_id, data=b"", segment=segment))
        # What ends the response (or rejects a message out of order) is hypercorn's own body handling.
        more_body = bool(zerocopy.get("more_body", False))
        await self.app_send({"type": "http.response.body", "body": b"", "more_body": more_body})


class EdgeH11Protocol(H11Protocol):
    """hypercorn's HTTP/1.1 protocol, which frames `FileBody` segments without reading them."""

    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, CorkStream):
            await self.send(Cork(event.on))
            return
        if not isinstance(event, FileBody) or event.segment is None:
            await super().stream_send(event)
            return
        assert isinstance(self.connection, h11.Connection)  # FileBody comes from HTTP streams only, never a WebSocket
        try:
            # h11 frames any body with a len() and hands it back untouched (so its pieces are not all bytes either)
            data = h11.Data(data=event.segment)  # type: ignore[arg-type]  # not bytes, on purpose: see above
            pieces: Sequence[bytes | SendFile] | None = self.connection.send_with_data_passthrough(data)
        except h11.LocalProtocolError:
            if self.connection.their_state != h11.ERROR:
                raise
            return
        for piece in pieces or ():
            await self.send(piece if isinstance(piece, SendFile) else RawData(data=bytes(piece)))


def install() -> None:
    """Make hypercorn build its HTTP/1.1 connections and streams from the classes above."""
    # Neither name is re-exported by its module (attr-defined), but that is where hypercorn looks them up.
    hypercorn.protocol.H11Protocol = EdgeH11Protocol  # type: ignore[attr-defined]  # ProtocolWrapper looks it up here
    hypercorn.protocol.h11.HTTPStream = EdgeHTTPStream  # type: ignore[attr-defined]  # H11Protocol._create_stream does
