"""What the API asks of the edge: tags, manifests and blobs of a repository, served from the local cache and
filled from the backend on a miss. Repository scoping is checked here, exactly as registry:2 checks it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable, Literal

import cachetools

from mirror import digests, layout, metrics
from mirror.cache.committed import RunningFills
from mirror.cache.content import BlobReader, CachedBlob, FillingBlob
from mirror.cache.fill import Fill, FillFailed
from mirror.cache.fills import FillManager
from mirror.cache.links import LinkCache
from mirror.cache.prefetch import Prefetcher
from mirror.cache.referrers import ReferrersCache
from mirror.cache.singleflight import SingleFlight
from mirror.cache.store import CachedFile, ContentStore, ContentTooLarge
from mirror.config import Config
from mirror.domain import Problem, Unavailable, Unknown
from mirror.mediatypes import MANIFEST_MAX_SIZE, NotAManifest, manifest_media_type
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, TooLarge, Upstream

# What one manifest held in memory costs besides its bytes: the Manifest object, the bytes header, the digest
# key and the LRU's three dict slots (tracemalloc on CPython 3.11: ~500 B; rounded up with a margin).
MANIFEST_OVERHEAD = 640
# Tags whose current link a tag listing checks at once.
TAG_CHECK_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: Digest
    data: bytes
    media_type: str


class EdgeCache:
    def __init__(
        self, config: Config, upstream: Upstream, store: ContentStore | None = None, running: RunningFills | None = None
    ) -> None:
        """`store` and `running` are made beforehand when something below the cache reads its committed files
        (`mirror.compose`); otherwise the cache makes its own."""
        self.upstream = upstream
        self.store = store or ContentStore(config.cache.dir, config.cache.size)
        self.links = LinkCache(upstream, config.cache.dir / "links", config.cache)
        self.fills = FillManager(self.store, upstream, config.fill, running)
        self.prefetcher = Prefetcher(self.links, self.fills, config.fill)
        self.referrers = ReferrersCache(upstream, self.links, self.manifest, config.cache.tag_ttl)
        # Manifests are small and hot (every pull starts with them): the most recent ones stay parsed in memory,
        # bounded by their bytes (``cache.manifest_memory``), not by their count.
        self._manifests: cachetools.LRUCache[Digest, Manifest] = cachetools.LRUCache(
            maxsize=config.cache.manifest_memory, getsizeof=lambda manifest: len(manifest.data) + MANIFEST_OVERHEAD
        )
        self._manifest_flight: SingleFlight[bytes] = SingleFlight()

    async def close(self) -> None:
        await self.prefetcher.close()
        await self.fills.close()
        self.links.close()
        self.store.close()

    async def probe(self) -> bool:
        """Whether the backend answers right now (feeds /readyz and ``mirror_backend_up``)."""
        try:
            await self.upstream.probe()
        except BackendError:
            metrics.backend_up.set(0)
            return False
        metrics.backend_up.set(1)
        return True

    def manifest_memory_bytes(self) -> int:
        """Bytes the in-memory manifests take (at most ``cache.manifest_memory``)."""
        return int(self._manifests.currsize)

    # -- tags and manifests -------------------------------------------------------------------------------

    async def resolve_tag(self, name: str, tag: str) -> Digest:
        return await self.links.resolve_tag(name, tag)

    async def manifest(self, name: str, digest: Digest) -> Manifest:
        """The manifest `digest` if repository `name` links it; MANIFEST_UNKNOWN otherwise.

        Nothing is read from the cache nor remembered before the link check passed, and nothing larger than a
        manifest can be (4 MiB) is ever read: a layer's digest asked for as a manifest costs no memory. On a
        miss the (size-capped) fetch runs beside the link check, so the two round trips overlap; its bytes are
        kept only if the link check passes, and it is cancelled once no request waits for it.
        """
        fetch: asyncio.Future[bytes] | None = None
        if digest not in self._manifests and not self.store.contains(digest):
            fetch = self._start_fetch(name, digest)
        try:
            await self._require_link(name, "manifest", digest)
            manifest = self._manifests.get(digest)
            if manifest is None and fetch is None:
                manifest = self._read_cached_manifest(digest)
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
        manifest = self._manifests.get(digest)
        if manifest is None:  # the first of the callers sharing the fetch keeps it
            manifest = self._remember_manifest(digest, data)
            self.store.put_bytes(digest, data)
        return manifest

    def _start_fetch(self, name: str, digest: Digest) -> "asyncio.Future[bytes]":
        """The manifest's bytes from the backend, read on behalf of `name` (the first of concurrent callers)."""
        fetch = asyncio.ensure_future(self._manifest_flight.do(digest, lambda: self._fetch_manifest(name, digest)))
        fetch.add_done_callback(_retrieve)
        return fetch

    def _read_cached_manifest(self, digest: Digest) -> Manifest | None:
        try:
            data = self.store.read_small(digest, MANIFEST_MAX_SIZE)
        except ContentTooLarge:
            raise _not_a_manifest(digest) from None
        return None if data is None else self._remember_manifest(digest, data)

    async def _fetch_manifest(self, name: str, digest: Digest) -> bytes:
        try:
            data = await self.upstream.read(layout.blob_data(digest, name), MANIFEST_MAX_SIZE)
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

    def cache_manifest(self, digest: Digest, data: bytes) -> None:
        """Keep a manifest pushed through this edge, so the next pull of it is a hit."""
        self._remember_manifest(digest, data)
        self.store.put_bytes(digest, data)

    def drop(self, digest: Digest) -> bool:
        """Forget content `digest` on this node (``edge-mirror purge``); the next request fills it again."""
        self._manifests.pop(digest, None)
        return self.store.discard(digest)

    def forget(self, name: str, digest: Digest | None, tag: str | None) -> None:
        """A delete made elsewhere (a registry event): drop the tag, the links of `digest` in `name`, the tags
        pointing at it, its manifest memory and its cached file, whatever their TTLs. Content is refilled from
        the bucket if another repository still links it."""
        if tag is not None:
            self.links.forget_tag(name, tag)
        if digest is None:
            return
        self.links.forget_tags_pointing_at(name, digest)
        self.links.forget_link(name, "manifest", digest)
        self.links.forget_link(name, "blob", digest)
        self.drop(digest)

    def _remember_manifest(self, digest: Digest, data: bytes) -> Manifest:
        try:
            media_type = manifest_media_type(data)
        except NotAManifest as error:
            raise Unknown("manifest", f"{digest} is not a manifest: {error}") from None
        manifest = Manifest(digest, data, media_type)
        if len(data) + MANIFEST_OVERHEAD <= self._manifests.maxsize:
            self._manifests[digest] = manifest
        return manifest

    # -- blobs --------------------------------------------------------------------------------------------

    async def blob_size(self, name: str, digest: Digest) -> int:
        """Size of blob `digest` in `name`, for HEAD: from the cache when held, else a backend stat (no fill)."""
        await self._require_link(name, "blob", digest)
        cached = self.store.open(digest)
        if cached is not None:
            cached.close()
            metrics.cache_requests.labels("blob", "hit").inc()
            return cached.size
        metrics.cache_requests.labels("blob", "miss").inc()
        try:
            return (await self.upstream.stat(layout.blob_data(digest, name))).size
        except NotFound:
            raise _blob_unknown(digest) from None
        except BackendError as error:
            raise Unavailable.of(error) from error

    async def open_blob(self, name: str, digest: Digest, tail: int = 0) -> BlobReader:
        """A reader for blob `digest` of `name`: the cached file, or the (new or running) fill for it.

        On a miss the fill starts before the repository link is checked, so the two backend round trips overlap
        (a far region pays one time-to-first-byte, not two). If the link turns out to be missing the client gets
        BLOB_UNKNOWN, and the fill is stopped unless a request that passed its check waits for it. `tail`: the
        length of a suffix Range asked for (a fill this starts reads those bytes first, in its first GET).
        """
        cached = self.store.open(digest)
        fill = self.fills.join(digest, entitled=False, tail=tail, repository=name) if cached is None else None
        try:
            await self._require_link(name, "blob", digest)
        except BaseException:
            if cached is not None:
                cached.close()
            if fill is not None:
                self.fills.abandon(fill)
            raise
        if fill is not None:
            self.fills.entitle(fill)
        self.fills.served(digest)
        return await self._open_content(digest, cached, fill, _client_blob_request, name)

    async def open_content(self, digest: Digest) -> BlobReader:
        """Content by digest with no repository check: only for the peer endpoint, whose callers prove they hold
        the region's shared secret and name no repository (``mirror/api/peer.py``). Counted apart from clients'
        requests (``mirror_peer_served_requests_total``)."""
        return await self._open_content(digest, self.store.open(digest), None, _peer_request)

    async def _open_content(
        self, digest: Digest, cached: CachedFile | None, fill: Fill | None, count: Callable[[str], None], name: str = ""
    ) -> BlobReader:
        """`name`: the repository asking ("" for a peer), which a fill started here reads on behalf of."""
        while True:
            if cached is None:
                cached = self.store.open(digest)
            if cached is not None:
                count("hit")
                return CachedBlob(cached)
            fill = fill or self.fills.join(digest, repository=name)
            try:
                size = await fill.wait_size()
                fd = fill.open_reader()
            except NotFound:
                raise _blob_unknown(digest) from None
            except (BackendError, FillFailed) as error:
                raise Unavailable.of(error) from error
            if fd is None:
                fill = None
                continue  # finished between our join and now: it is in the store
            count("miss")
            reader = FillingBlob(fill, fd, size)
            if size == 0 and fill.task is not None:
                await asyncio.wait({fill.task})
                if fill.error is not None:
                    reader.close()
                    raise Unavailable.of(fill.error)
            return reader

    async def _require_link(self, name: str, kind: Literal["blob", "manifest"], digest: Digest) -> None:
        if not await self.links.is_linked(name, kind, digest):
            raise Unknown(kind, f"{kind} {digest} is not in repository {name!r}", {"digest": str(digest)})

    # -- listings -----------------------------------------------------------------------------------------

    async def tags(self, name: str) -> list[str]:
        """Every tag of `name` that has a ``current/link``, sorted; NAME_UNKNOWN only when the tags directory is
        absent, as registry:2 2.8 answers (its ``tagStore.All``): after the last manifest is deleted the directory is
        still there (empty on a filesystem, emptied tag folders on SeaweedFS), and the answer is an empty list.

        A tag directory without its link is a deleted tag on a backend that keeps empty prefixes in listings
        (SeaweedFS does; S3 does not). The check goes through the tag cache, so it costs one small read per tag
        not resolved within ``cache.tag_ttl``.
        """
        try:
            listing = await self.upstream.list(layout.tags_directory(name))
        except BackendError as error:
            raise Unavailable.of(error) from error
        limit = asyncio.Semaphore(TAG_CHECK_CONCURRENCY)

        async def is_current(tag: str) -> bool:
            async with limit:
                try:
                    await self.links.resolve_tag(name, tag)
                except Unavailable:
                    raise
                except Problem:
                    return False
                return True

        if not listing.exists():
            raise Unknown("name", f"repository {name!r} is not known", {"name": name})
        found = await asyncio.gather(*(is_current(tag) for tag in listing.directories))
        return sorted(tag for tag, current in zip(listing.directories, found) if current)


def _client_blob_request(result: str) -> None:
    metrics.cache_requests.labels("blob", result).inc()


def _peer_request(result: str) -> None:
    metrics.peer_served_requests.labels(result).inc()


def _retrieve(task: "asyncio.Future[object]") -> None:
    """Mark a speculative fetch's failure as seen when nobody awaits it (its caller failed the link check)."""
    if not task.cancelled():
        task.exception()


def _not_a_manifest(digest: Digest) -> Unknown:
    return Unknown("manifest", f"{digest} is not a manifest: larger than 4 MiB", {"digest": str(digest)})


def _blob_unknown(digest: Digest) -> Unknown:
    return Unknown("blob", f"blob {digest} is not in storage", {"digest": str(digest)})
