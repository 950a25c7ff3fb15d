"""`PeerReader`: the bucket reader, except that a blob owned by another edge of the region is read from that edge.

Only blob content (`read_first` / `read_range` of a `BlobKey`) goes to peers; links, manifests,
stats and listings always go to the bucket. A peer read that cannot connect or answer headers within
``peers.timeout``, answers anything but the exact range asked, claims a size the bucket disagrees with, or breaks
mid-stream falls back to the bucket for the bytes still missing, and the peer is left out of ownership for one
``peers.refresh`` period. The fill above never knows: it verifies every byte against the digest as always.

Two rules keep peer reads from going round in circles or repeating a failure:

- `keep_local`: a digest a peer asked this edge for is read from the bucket here for a while, whoever this edge
  thinks owns it, so a peer request is never forwarded (views of the region may briefly differ).
- a digest fetched from a peer that is being filled again (its fill did not commit, e.g. it failed verification)
  is read from the bucket, and that peer is left out for a period.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, TypeVar

import aiohttp
from cachetools import TTLCache

from mirror import metrics
from mirror.config import PeersConfig
from mirror.httpranges import parse_content_range
from mirror.layout import BlobKey
from mirror.peers import auth, ownership
from mirror.peers.discovery import Membership
from mirror.reference import Digest
from mirror.upstream import Listing, ObjectInfo, Source, Upstream
from mirror.upstream.base import STREAM_CHUNK, BackendError

log = logging.getLogger(__name__)
T = TypeVar("T")

PEER_PATH = "/_peer/blobs/"
# A peer that has sent headers may still wait for its own fill to reach the bytes we asked for: be patient.
READ_TIMEOUT = 60
# Digests served to peers stay bucket-only here, and digests fetched from peers are remembered, this long.
MEMORY_SECONDS = 600
MEMORY_ENTRIES = 16384
CONNECTIONS = 256


class PeerFailed(Exception):
    """A peer could not serve a read; `reason` is a label of ``mirror_peer_fallbacks_total``."""

    def __init__(self, reason: str, detail: str, down: bool = True) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.down = down  # leave the peer out of ownership for a while


class PeerReader:
    """Wraps the (instrumented) bucket reader; see the module docstring."""

    def __init__(self, inner: Upstream, settings: PeersConfig, membership: Membership | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.membership = membership or Membership(settings)
        self.secret = settings.secret
        self._timeout = settings.timeout
        self._local: TTLCache[Digest, bool] = TTLCache(MEMORY_ENTRIES, MEMORY_SECONDS)
        self._from_peer: TTLCache[Digest, str] = TTLCache(MEMORY_ENTRIES, MEMORY_SECONDS)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.inner.start()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=READ_TIMEOUT),
            auto_decompress=False,
        )
        await self.membership.start()

    async def close(self) -> None:
        await self.membership.close()
        if self._session is not None:
            await self._session.close()
        await self.inner.close()

    # -- what always goes to the bucket ---------------------------------------------------------------------

    async def probe(self) -> None:
        await self.inner.probe()

    async def stat(self, key: str) -> ObjectInfo:
        return await self.inner.stat(key)

    async def read(self, key: str, max_size: int) -> bytes:
        return await self.inner.read(key, max_size)

    async def list(self, directory: str) -> Listing:
        return await self.inner.list(directory)

    # -- blob content: from its owner when that is another edge -----------------------------------------------

    def keep_local(self, digest: Digest) -> None:
        """A peer asked us for `digest`: read it from the bucket here, never from another peer."""
        self._local[digest] = True

    def owner_of(self, digest: Digest) -> str | None:
        """The other edge that owns `digest`, or None when this edge reads it from the bucket itself."""
        if digest in self._local:
            return None
        owner = ownership.owner(str(digest), self.membership.live())
        return None if owner == self.membership.self_address else owner

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        digest = key.digest if isinstance(key, BlobKey) else None
        peer = self.owner_of(digest) if digest is not None else None
        if digest is None or peer is None:
            return await self.inner.read_first(key, length)
        earlier = self._from_peer.pop(digest, None)
        if earlier is not None:
            self._fall_back(earlier, PeerFailed("refill", f"{digest} from {earlier} did not stay in the cache"))
            return await self.inner.read_first(key, length)
        stat = asyncio.ensure_future(self.inner.stat(key))
        try:
            response, size = await self._request(peer, digest, 0, length)
        except PeerFailed as failure:
            await _cancel(stat)
            self._fall_back(peer, failure)
            return await self.inner.read_first(key, length)
        except BaseException:
            await _cancel(stat)
            raise
        try:
            known = (await stat).size
        except BackendError:
            known = size  # the bucket cannot say; the digest check after the fill still decides
        except BaseException:
            response.close()
            raise
        if known != size:
            response.close()
            self._fall_back(peer, PeerFailed("size_mismatch", f"{digest}: peer says {size} bytes, bucket {known}"))
            return await self.inner.read_first(key, length)
        self._from_peer[digest] = peer
        return size, self._relay(peer, key, response, 0, min(length, size))

    async def read_last(self, key: str, length: int) -> tuple[int, int, AsyncIterator[bytes]]:
        """The bucket's suffix read for a blob this edge owns; one another edge owns is read from its start
        through `read_first` (start 0), so the owner fills it."""
        if not isinstance(key, BlobKey) or self.owner_of(key.digest) is None:
            return await self.inner.read_last(key, length)
        size, chunks = await self.read_first(key, length)
        return size, 0, chunks

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        digest = key.digest if isinstance(key, BlobKey) else None
        peer = self.owner_of(digest) if digest is not None else None
        if digest is not None and peer is not None:
            try:
                response, _ = await self._request(peer, digest, start, end)
            except PeerFailed as failure:
                self._fall_back(peer, failure)
            else:
                async for chunk in self._relay(peer, key, response, start, end):
                    yield chunk
                return
        async for chunk in self.inner.read_range(key, start, end):
            yield chunk

    # -- the peer protocol ------------------------------------------------------------------------------------

    async def _request(self, peer: str, digest: Digest, start: int, end: int) -> tuple[aiohttp.ClientResponse, int]:
        """GET bytes ``[start, end)`` of `digest` from `peer`; the open response and the blob's total size."""
        assert self._session is not None, "PeerReader.start() was not awaited"
        path = f"{PEER_PATH}{digest}"
        wanted = f"bytes={start}-{end - 1}"
        headers = {"Range": wanted, "Authorization": auth.sign(self.secret, "GET", path, wanted)}
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._session.get(f"http://{peer}{path}", headers=headers, allow_redirects=False)
        except TimeoutError:
            raise PeerFailed("timeout", f"{peer} did not answer within {self._timeout}s") from None
        except (aiohttp.ClientError, OSError) as error:
            raise PeerFailed("unreachable", f"{peer}: {error}") from None
        served = parse_content_range(response.headers.get("Content-Range"))
        if response.status != 206 or served is None or served.size is None:
            response.close()
            # A peer refusing our signature is misconfigured (another secret, a skewed clock): avoid it for a while.
            # Any other answer (404, 503) is about this digest, not about the peer.
            raise PeerFailed("refused", f"{peer} answered {response.status} for {digest}", down=response.status in (401, 403))
        first, last, size = served.first, served.last, served.size  # size: an int now, checked above
        if first != start or last != min(end, size) - 1:
            response.close()
            raise PeerFailed("broken", f"{peer} sent bytes {first}-{last} of {digest}, not {wanted}")
        return response, size

    async def _relay(self, peer: str, key: str, response: aiohttp.ClientResponse, start: int, end: int) -> AsyncIterator[bytes]:
        """Stream the peer's answer; if it stops short, fetch the rest of ``[start, end)`` from the bucket."""
        position = start
        failure: PeerFailed | None = None
        counted = metrics.peer_bytes
        try:
            while position < end:
                chunk = await _next_chunk(response, end - position)
                if not chunk:
                    break
                position += len(chunk)
                counted.inc(len(chunk))
                yield chunk
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            failure = PeerFailed("broken", f"{peer} stopped at byte {position}: {error!r}")
        finally:
            response.close()
        if position < end:
            self._fall_back(peer, failure or PeerFailed("broken", f"{peer} ended at byte {position} of {end}"))
            async for chunk in self.inner.read_range(key, position, end):
                yield chunk
        else:
            metrics.peer_requests.labels("ok").inc()

    def _fall_back(self, peer: str, failure: PeerFailed) -> None:
        log.warning("peers: reading from the bucket instead: %s", failure)
        metrics.peer_requests.labels("fallback").inc()
        metrics.peer_fallbacks.labels(failure.reason).inc()
        if failure.down:
            self.membership.mark_down(peer)


async def _next_chunk(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Up to STREAM_CHUNK bytes: wait for some, then take whatever else has already arrived."""
    want = min(STREAM_CHUNK, limit)
    chunk = await response.content.read(want)
    while chunk and len(chunk) < want:
        more = response.content.read_nowait(want - len(chunk))
        if not more:
            break
        chunk += more
    return chunk


async def _cancel(task: asyncio.Future[T]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def open_peer_reader(inner: Upstream, settings: PeersConfig) -> Source:
    """`inner` wrapped in a PeerReader when ``[peers]`` is configured, else `inner` itself."""
    return PeerReader(inner, settings) if settings.enabled else inner

