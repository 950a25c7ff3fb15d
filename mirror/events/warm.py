"""Warming a pushed image on this edge: its tag, manifests and links are read into memory, and the blobs this
edge owns in the region (every blob without peers) are filled from the bucket, so a later pull on any edge of
the region reads no bucket bytes (a non-owner reads the blob from its owner).

Warming is the lowest priority: a blob of known size is a background fill (`mirror.cache.prefetch`, shared with
prefetch from the manifest): its GETs wait behind every fill a client waits on, and it is warmed only into free
room, claimed when it starts (warming never evicts anything), at most
``events.max_event_bytes`` per image and ``events.max_inflight_bytes`` on this edge at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mirror import metrics
from mirror.auth.policy import compile_glob
from mirror.cache import EdgeCache
from mirror.cache.prefetch import ByteLimit, blob_descriptors, fill_in_background
from mirror.cache.prefetch import document as _document
from mirror.config import EventsConfig
from mirror.reference import Digest, parse_digest
from mirror.domain import Problem, Unknown

log = logging.getLogger(__name__)

# Blobs of one image filled at once (the in-flight byte limit bounds them too).
PARALLEL_BLOBS = 4
# Pauses between reads of a pushed tag that is not in the bucket yet (see Warmer._resolve_tag).
TAG_RETRIES = (0.1, 0.2, 0.5, 1.0, 2.0)


class Warmer:
    def __init__(self, edge: EdgeCache, settings: EventsConfig, owns: Any) -> None:
        """`owns(digest)` says whether this edge fills `digest` for the region (its rendezvous owner)."""
        self._edge = edge
        self._settings = settings
        self._globs = [compile_glob(pattern) for pattern in settings.repositories]
        self._owns = owns
        self._inflight = ByteLimit(settings.max_inflight_bytes)

    def wanted(self, repository: str) -> bool:
        return any(glob.fullmatch(repository) for glob in self._globs)

    async def warm(self, repository: str, digest: Digest | None, tag: str | None) -> int:
        """Warm `repository` at `digest` (the event's; else what `tag` points at), then its `tag`; the blob bytes
        filled here."""
        if not self.wanted(repository):
            metrics.event_warms.labels("skipped").inc()
            return 0
        try:
            if digest is None:
                assert tag is not None
                digest = await self._edge.resolve_tag(repository, tag)
            blobs = await self._blobs(repository, digest)
            filled = await self._fill_owned(repository, blobs)
            if tag is not None:
                await self._resolve_tag(repository, tag)
        except Problem as error:
            log.warning("events: cannot warm %s@%s: %s", repository, tag or digest, error)
            metrics.event_warms.labels("error").inc()
            return 0
        metrics.event_warms.labels("ok").inc()
        return filled

    async def _resolve_tag(self, repository: str, tag: str) -> None:
        """Read the tag into the tag cache. registry:2 sends the push event of a manifest before it writes the
        tag's link: a tag not there yet is asked again, a few times, for a few seconds."""
        for pause in TAG_RETRIES:
            try:
                await self._edge.resolve_tag(repository, tag)
                return
            except Unknown as error:
                if error.what != "manifest":
                    raise
            await asyncio.sleep(pause)
        await self._edge.resolve_tag(repository, tag)

    async def _blobs(self, repository: str, digest: Digest) -> list[tuple[Digest, int]]:
        """The config and layer blobs of the manifest, or of the index's configured platforms (manifests read
        into memory on the way)."""
        top = _document((await self._edge.manifest(repository, digest)).data)
        documents = [top]
        for child in top.get("manifests") or []:
            if isinstance(child, dict) and self._platform_wanted(child.get("platform")):
                child_digest = parse_digest(str(child.get("digest", "")))
                documents.append(_document((await self._edge.manifest(repository, child_digest)).data))
        blobs: dict[Digest, int] = {}
        for document in documents:
            blobs.update(blob_descriptors(document))
        return list(blobs.items())

    def _platform_wanted(self, platform: Any) -> bool:
        if not self._settings.platforms:
            return True
        if not isinstance(platform, dict):
            return False
        name = f"{platform.get('os')}/{platform.get('architecture')}"
        variant = f"{name}/{platform['variant']}" if platform.get("variant") else name
        return any(wanted in (name, variant) for wanted in self._settings.platforms)

    async def _fill_owned(self, repository: str, blobs: list[tuple[Digest, int]]) -> int:
        budget = self._settings.max_event_bytes
        chosen: list[tuple[Digest, int]] = []
        for digest, size in blobs:
            # The link answer is kept for cache.link_ttl: a pull of this blob here checks nothing in the bucket.
            if not await self._edge.links.is_linked(repository, "blob", digest):
                continue
            if not self._owns(digest) or self._edge.store.contains(digest):
                continue
            if size > budget:
                metrics.event_warm_bytes.labels("skipped").inc(size)
                continue
            budget -= size
            chosen.append((digest, size))
        limit = asyncio.Semaphore(PARALLEL_BLOBS)

        async def fill(digest: Digest, size: int) -> int:
            async with limit:
                return await self._fill(digest, size)

        return sum(await asyncio.gather(*(fill(digest, size) for digest, size in chosen)))

    async def _fill(self, digest: Digest, size: int) -> int:
        if size <= 0:  # no size in the manifest: an ordinary fill (its first GET tells the size)
            return await self._fill_unsized(digest)
        result = await fill_in_background(self._edge.fills, digest, size, self._inflight, counted=False)
        if result not in ("filled", "joined"):
            if result == "skipped":
                metrics.event_warm_bytes.labels("skipped").inc(size)  # warming never evicts what clients asked for
            return 0
        metrics.event_warm_bytes.labels("filled").inc(size)
        return size

    async def _fill_unsized(self, digest: Digest) -> int:
        fill = self._edge.fills.join(digest)
        assert fill.task is not None
        await asyncio.wait({fill.task})
        if fill.error is not None or not fill.committed:
            log.warning("events: warming %s failed: %s", digest, fill.error or "not committed")
            return 0
        size = fill.size or 0
        metrics.event_warm_bytes.labels("filled").inc(size)
        return size
