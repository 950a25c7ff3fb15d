"""Response helpers: OCI error bodies, and the streaming blob response of the hot path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import BinaryIO, Protocol, TypeVar

from prometheus_client import Counter
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mirror import errors, metrics
from mirror.cache import FillFailed
from mirror.sendfile import BODY_FOLLOWS, ZEROCOPY_SEND

log = logging.getLogger(__name__)

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")
# Not sent (the client is gone): what the access log and the request metrics call a request whose client hung up
# before its body was complete (nginx's "client closed request").
CLIENT_CLOSED_REQUEST = 499
# Per zero-copy send: served bytes are counted this often (a segment cut short by a hang-up is not counted). Each
# costs ~0.3 ms of Python through the ASGI stack: 8 MiB segments were ~0.04 CPU-s per GiB served, 32 MiB ~0.01.
SENDFILE_SEGMENT = 32 * 1024 * 1024


_Item = TypeVar("_Item")


class BlobSource(Protocol):
    """What `BlobResponse` streams from: the cache's readers (`mirror.cache.content`: a cached file, a fill in
    progress) and `mirror.api.peer.PeerSpan`, which wraps one of them.

    `chunks` and `spans` take `client_gone`, a future that completes when the client hangs up; `file()` is the
    local file the spans are in (only called when `zero_copy`). The iterators are async generators, closed with
    `closing` (typed here as plain iterators because that is what the cache's readers declare; tightened to
    ``AsyncGenerator`` with `contextlib.aclosing` once issue 22's restructuring of mirror/cache/ has landed).
    """

    @property
    def size(self) -> int: ...
    @property
    def source(self) -> str: ...  # the `served` counter's label: "cache", "fill"
    @property
    def zero_copy(self) -> bool: ...

    def chunks(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[bytes]: ...
    def spans(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[tuple[int, int]]: ...
    def file(self) -> BinaryIO: ...
    def close(self) -> None: ...


@contextlib.asynccontextmanager
async def closing(iterator: AsyncIterator[_Item]) -> AsyncGenerator[AsyncIterator[_Item], None]:
    """`contextlib.aclosing` for a `BlobSource`'s iterator: closes it on the way out (every reader's is an async
    generator; the protocol promises only iteration)."""
    try:
        yield iterator
    finally:
        if isinstance(iterator, AsyncGenerator):
            await iterator.aclose()


def error_response(error: errors.RegistryError) -> Response:
    return Response(
        error.body(), status_code=error.status, media_type="application/json", headers=error.headers
    )


class BlobResponse:
    """Streams ``[start, end)`` of a blob with plain ASGI sends of ≥ 1 MiB chunks.

    Where the server offers ``sendfile`` (`mirror.sendfile`) and the bytes are in a local file — a verified
    cached file, or the partial file of a fill in progress, range by range as it is written — no byte passes
    through Python. Otherwise (a fill served straight from the backend, a server without the extension) the
    blob streams in chunks. Memory per response is bounded whatever the client does: `await send()` returns
    only once the server's write buffer is drained below its high-water mark, so a slow reader holds about one
    chunk; a client that hangs up is noticed through ``http.disconnect`` (watched by a task beside the send
    loop) and the response stops reading at once. Only bytes handed to a live connection count as served.

    If the underlying fill fails mid-stream (digest mismatch, backend gone), or the client has gone, the
    response is abandoned without its final message, so the server drops the connection: the client sees a
    failed transfer, and the server never keeps a dead connection around for keep-alive.
    """

    def __init__(
        self, reader: BlobSource, status: int, headers: dict[str, str], start: int, end: int, send_body: bool,
        served: Counter = metrics.served_bytes,
    ) -> None:
        self.reader = reader
        self.served = served  # by source: clients' bytes, or (mirror/api/peer.py) the region's other edges'
        self.status = status
        self.headers = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        self.start = start
        self.end = end
        self.send_body = send_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client_gone = asyncio.ensure_future(_disconnected(receive))
        metrics.blob_responses_in_flight.inc()
        try:
            zero_copy = ZEROCOPY_SEND in scope.get("extensions", {}) and self.reader.zero_copy
            # A cached file's first segment follows the head at once: they may leave in one packet.
            start = {"type": "http.response.start", "status": self.status, "headers": self.headers}
            if zero_copy and self.send_body and self.reader.source == "cache":
                start[BODY_FOLLOWS] = True
            await send(start)
            body_sender = self._send_file if zero_copy else self._send_body
            if self.send_body and not await body_sender(send, client_gone):
                log.debug("client went away during %s %s", scope.get("method"), scope.get("path"))
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except FillFailed as error:
            log.warning("aborting %s %s: %s", scope.get("method"), scope.get("path"), error)
        except OSError as error:
            log.info("client went away during %s: %s", scope.get("path"), error)
        finally:
            client_gone.cancel()
            self.reader.close()
            metrics.blob_responses_in_flight.dec()

    async def _send_body(self, send: Send, client_gone: "asyncio.Future[None]") -> bool:
        """Send every chunk; False as soon as the client is known to be gone (no further read is made)."""
        served = self.served.labels(self.reader.source)
        async with closing(self.reader.chunks(self.start, self.end, client_gone)) as chunks:
            async for chunk in chunks:
                if client_gone.done():
                    return False
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if client_gone.done():
                    return False
                served.inc(len(chunk))
        return not client_gone.done()

    async def _send_file(self, send: Send, client_gone: "asyncio.Future[None]") -> bool:
        """Send the range as zero-copy segments, each as soon as it is in the file; False as soon as the client
        is known to be gone."""
        served = self.served.labels(self.reader.source)
        with self.reader.file() as file:
            async with closing(self.reader.spans(self.start, self.end, client_gone)) as spans:
                async for position, end in spans:
                    while position < end:
                        count = min(SENDFILE_SEGMENT, end - position)
                        await send({"type": ZEROCOPY_SEND, "file": file, "offset": position, "count": count,
                                    "more_body": True})
                        if client_gone.done():
                            return False
                        served.inc(count)
                        metrics.zero_copy_bytes.inc(count)
                        position += count
        return not client_gone.done()


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone. A GET carries no body; any body a client sends anyway is dropped, and
    a receive that fails (a body that never arrives: `BodyReadTimeout`) means the request cannot go on either."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except errors.RegistryError:
        return
