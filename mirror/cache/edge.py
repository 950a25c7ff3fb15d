"""What the API asks of the edge: tags, manifests and blobs of a repository, served from the local cache and
filled from the backend on a miss. Repository scoping is checked here, exactly as registry:2 checks it.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Literal

from mirror import layout, metrics
from mirror.cache.committed import RunningFills
from mirror.cache.content import BlobReader, CachedBlob, FillingBlob
from mirror.cache.direct import WrongSize
from mirror.cache.fill import Fill, FillFailed
from mirror.cache.fills import FillManager
from mirror.cache.links import LinkCache
from mirror.cache.manifests import Manifest, Manifests
from mirror.cache.prefetch import Prefetcher
from mirror.cache.referrers import ReferrersCache
from mirror.cache.store import CachedFile, ContentStore
from mirror.config import Config
from mirror.domain import Problem, Unavailable, Unknown
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Upstream

# Tags whose current link a tag listing checks at once.
TAG_CHECK_CONCURRENCY = 16


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
        self.manifests = Manifests(upstream, self.store, self.links, config.cache.manifest_memory)
        self.referrers = ReferrersCache(upstream, self.links, self.manifest, config.cache.tag_ttl)

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
        return self.manifests.memory_bytes()

    # -- tags and manifests -------------------------------------------------------------------------------

    async def resolve_tag(self, name: str, tag: str) -> Digest:
        return await self.links.resolve_tag(name, tag)

    async def manifest(self, name: str, digest: Digest) -> Manifest:
        """The manifest `digest` if repository `name` links it; MANIFEST_UNKNOWN otherwise (`Manifests.get`)."""
        return await self.manifests.get(name, digest)

    def cache_manifest(self, digest: Digest, data: bytes) -> None:
        """Keep a manifest pushed through this edge, so the next pull of it is a hit."""
        self.manifests.keep(digest, data)

    def drop(self, digest: Digest) -> bool:
        """Forget content `digest` on this node (``edge-mirror purge``); the next request fills it again."""
        self.manifests.forget(digest)
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
            except WrongSize:  # a prefetch planned from a manifest's wrong size: a fill of its own learns the right one
                fill = None
                continue
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


def _blob_unknown(digest: Digest) -> Unknown:
    return Unknown("blob", f"blob {digest} is not in storage", {"digest": str(digest)})
