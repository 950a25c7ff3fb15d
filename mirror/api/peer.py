"""``GET /_peer/blobs/<digest>``: blob content by digest for the other edges of the region (Range supported).

Only for holders of the region's secret (an HMAC-signed request, `mirror.peers.auth`), and only by digest: no
repository name is taken, so the route answers nothing a client could not already get by digest with the right
repository, and nothing at all without the secret. The route exists only when ``[peers]`` is configured.

Content comes from the cache, or from this edge's fill in progress as it lands (joining it, or starting one that
reads the bucket: a peer request is never forwarded to a third edge).
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, BinaryIO

from starlette.requests import Request

from mirror import errors, metrics
from mirror.api.ranges import parse_range
from mirror.api.responses import BlobResponse, BlobSource, closing
from mirror.cache import EdgeCache
from mirror.httpranges import content_range
from mirror.peers import PeerReader, auth
from mirror.reference import parse_digest


class PeerSpan:
    """A blob reader for a peer: a range that ends before the blob does is sent as soon as its bytes land.

    A client's transfer holds its last byte back until the fill is verified, so that a corrupt blob never
    completes. A peer verifies the whole blob itself, so here the held-back byte is the one after the range, which
    is never sent: the peer's fill gets every part as it lands, not all of them at this edge's commit.
    """

    def __init__(self, blob: BlobSource) -> None:
        self._blob = blob
        self.size = blob.size
        self.source = blob.source
        self.zero_copy = blob.zero_copy

    async def chunks(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[bytes]:
        remaining = end - start
        async with closing(self._blob.chunks(start, min(end + 1, self.size), client_gone)) as inner:
            async for chunk in inner:
                if len(chunk) >= remaining:
                    yield chunk[:remaining]
                    return
                remaining -= len(chunk)
                yield chunk

    async def spans(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[tuple[int, int]]:
        """The same rule for ``sendfile``: the spans of the range and its next byte, cut at the range's end."""
        async with closing(self._blob.spans(start, min(end + 1, self.size), client_gone)) as inner:
            async for position, stop in inner:
                stop = min(stop, end)
                if position < stop:
                    yield position, stop
                if stop >= end:
                    return

    def file(self) -> BinaryIO:
        return self._blob.file()

    def close(self) -> None:
        self._blob.close()


async def peer_blob(request: Request) -> BlobResponse:
    reader: PeerReader = request.app.state.peer_reader
    wanted = request.headers.get("range", "")
    if not auth.verify(reader.secret, request.headers.get("authorization"), "GET", request.scope["path"], wanted):
        metrics.auth_requests.labels("peer", "invalid").inc()
        raise errors.RegistryError(errors.UNAUTHORIZED, "peer requests must be signed with the region's peers.secret")
    metrics.auth_requests.labels("peer", "ok").inc()
    digest = parse_digest(request.path_params["digest"])
    reader.keep_local(digest)
    edge: EdgeCache = request.app.state.edge
    blob = PeerSpan(await edge.open_content(digest))
    try:
        span = parse_range(wanted or None, blob.size)
    except BaseException:
        blob.close()
        raise
    start, end = span if span is not None else (0, blob.size)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(end - start), "Docker-Content-Digest": str(digest)}
    # Bytes sent to peers are not client traffic: mirror_peer_served_bytes_total, not mirror_served_bytes_total.
    served = metrics.peer_served_bytes
    if span is None:
        return BlobResponse(blob, 200, headers, 0, blob.size, send_body=True, served=served)
    headers["Content-Range"] = content_range(start, end, blob.size)
    return BlobResponse(blob, 206, headers, start, end, send_body=True, served=served)
