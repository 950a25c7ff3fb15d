"""Manifests as the edge serves them: checked against the repository's link, read from the local store or the
backend (size-capped, one fetch per digest however many ask), and the most recent kept parsed in memory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import cachetools

from mirror import digests, layout, metrics
from mirror.cache.links import LinkCache
from mirror.cache.singleflight import SingleFlight
from mirror.cache.store import ContentStore, ContentTooLarge
from mirror.domain import Unavailable, Unknown
from mirror.mediatypes import MANIFEST_MAX_SIZE, NotAManifest, manifest_media_type
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, TooLarge, Upstream

# What one manifest held in memory costs besides its bytes: the Manifest object, the bytes header, the digest
# key and the LRU's three dict slots (tracemalloc on CPython 3.11: ~500 B; rounded up with a margin).
MANIFEST_OVERHEAD = 640
@dataclass(frozen=True, slots=True)
class Manifest:
    digest: Digest
    data: bytes
    media_type: str


class Manifests:
    def __init__(self, upstream: Upstream, store: ContentStore, links: LinkCache, memory: int) -> None:
        self._upstream = upstream
        self._store = store
        self._links = links
        # Manifests are small and hot (every pull starts with them): the most recent ones stay parsed in memory,
        # bounded by their bytes (``cache.manifest_memory``), not by their count.
        self._memory: cachetools.LRUCache[Digest, Manifest] = cachetools.LRUCache(
            maxsize=memory, getsizeof=lambda manifest: len(manifest.data) + MANIFEST_OVERHEAD
        )
        self._flight: SingleFlight[bytes] = SingleFlight()

    def memory_bytes(self) -> int:
        return int(self._memory.currsize)

    def forget(self, digest: Digest) -> None:
        self._memory.pop(digest, None)

    async def get(self, name: str, digest: Digest) -> Manifest:
        """The manifest `digest` if repository `name` links it; MANIFEST_UNKNOWN otherwise.

        Nothing is read from the cache nor remembered before the link check passed, and nothing larger than a
        manifest can be (4 MiB) is ever read: a layer's digest asked for as a manifest costs no memory. On a
        miss the (size-capped) fetch runs beside the link check, so the two round trips overlap; its bytes are
        kept only if the link check passes, and it is cancelled once no request waits for it.
        """
        fetch: asyncio.Future[bytes] | None = None
        if digest not in self._memory and not self._store.contains(digest):
            fetch = self._start_fetch(name, digest)
        try:
            await self._require_link(name, digest)
            manifest = self._memory.get(digest)
            if manifest is None and fetch is None:
                manifest = self._read_cached(digest)
                if manifest is None:
                    fetch = self._start_fetch(name, digest)  # evicted in the meantime
            if manifest is not None:
                metrics.cache_requests.labels("manifest", "hit").inc()
                return manifest
            assert fetch is not None
            metrics.cache_requests.labels("manifest", "miss").inc()
            data = await fetch
        finally:
            if fetch is not None and not fetch.done():
                fetch.cancel()  # nobody here waits for it any more (link check failed, or the client left)
        manifest = self._memory.get(digest)
        if manifest is None:  # the first of the callers sharing the fetch keeps it
            manifest = self._remember(digest, data)
            self._store.put_bytes(digest, data)
        return manifest

    def _start_fetch(self, name: str, digest: Digest) -> "asyncio.Future[bytes]":
        """The manifest's bytes from the backend, read on behalf of `name` (the first of concurrent callers)."""
        fetch = asyncio.ensure_future(self._flight.do(digest, lambda: self._fetch(name, digest)))
        fetch.add_done_callback(_retrieve)
        return fetch

    def _read_cached(self, digest: Digest) -> Manifest | None:
        try:
            data = self._store.read_small(digest, MANIFEST_MAX_SIZE)
        except ContentTooLarge:
            raise _not_a_manifest(digest) from None
        return None if data is None else self._remember(digest, data)

    async def _fetch(self, name: str, digest: Digest) -> bytes:
        try:
            data = await self._upstream.read(layout.blob_data(digest, name), MANIFEST_MAX_SIZE)
        except NotFound:
            raise Unknown("manifest", f"manifest {digest} is not in storage") from None
        except TooLarge:
            raise _not_a_manifest(digest) from None
        except BackendError as error:
            raise Unavailable.of(error) from error
        try:
            digests.check_bytes(digest, data, "manifest in storage")
        except digests.DigestMismatch as mismatch:
            metrics.fills.labels("digest_mismatch").inc()
            raise Unavailable(f"corrupt: {mismatch}") from None
        return data

    async def _require_link(self, name: str, digest: Digest) -> None:
        if not await self._links.is_linked(name, "manifest", digest):
            raise Unknown("manifest", f"manifest {digest} is not in repository {name!r}", {"digest": str(digest)})

    def keep(self, digest: Digest, data: bytes) -> None:
        """Keep a manifest pushed through this edge, so the next pull of it is a hit."""
        self._remember(digest, data)
        self._store.put_bytes(digest, data)

    def _remember(self, digest: Digest, data: bytes) -> Manifest:
        try:
            media_type = manifest_media_type(data)
        except NotAManifest as error:
            raise Unknown("manifest", f"{digest} is not a manifest: {error}") from None
        manifest = Manifest(digest, data, media_type)
        if len(data) + MANIFEST_OVERHEAD <= self._memory.maxsize:
            self._memory[digest] = manifest
        return manifest


def _retrieve(task: "asyncio.Future[bytes]") -> None:
    """Mark a speculative fetch's failure as seen when nobody awaits it (its caller failed the link check)."""
    if not task.cancelled():
        task.exception()


def _not_a_manifest(digest: Digest) -> Unknown:
    return Unknown("manifest", f"{digest} is not a manifest: larger than 4 MiB", {"digest": str(digest)})
