"""Background fills of the blobs an image manifest names: prefetch (a client read the manifest, so its layers
come next) and warming (a push event, `mirror.events.warm`) share this one mechanism.

A background fill is planned from the size in the manifest's descriptor (no GET first to learn it; the first
part's GET checks it, and the digest check verifies the bytes), claims free room when it starts (it never evicts
anything: a blob that does not fit beside the cache's content is skipped), and its GETs wait behind every other
fill's until a client joins it (`ConnectionBudget`). At most ``inflight`` bytes are filled at once on this edge.

Prefetch never fetches what the client may not read: the manifest was served under repository R to a client
allowed to pull R, and only blobs linked in R (the same link check a blob GET makes) are prefetched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

import orjson

from mirror import metrics
from mirror.cache.fills import FillManager
from mirror.cache.links import LinkCache
from mirror.config import FillConfig
from mirror.reference import Digest, parse_digest

log = logging.getLogger(__name__)

# A manifest served again within this many seconds is not looked at again (a hot tag is served thousands of times a
# second: each look costs a parse and a cache-index lookup per blob); at most this many manifests remembered.
RECENT_SECONDS = 30.0
RECENT_MANIFESTS = 4096


class ByteLimit:
    """At most `limit` bytes held at once; one request larger than the limit runs alone."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._changed = asyncio.Condition()

    async def acquire(self, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._held == 0 or self._held + size <= self._limit)
            self._held += size

    async def release(self, size: int) -> None:
        async with self._changed:
            self._held -= size
            self._changed.notify_all()


def document(data: bytes) -> dict[str, Any]:
    """A manifest's JSON object ({} when it is not one)."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def blob_descriptors(manifest: dict[str, Any]) -> list[tuple[Digest, int]]:
    """The config and layers of an image manifest as ``(digest, size)`` (size 0: not given); foreign layers
    (with ``urls``) and malformed descriptors are left out."""
    blobs: dict[Digest, int] = {}
    for descriptor in [manifest.get("config"), *(manifest.get("layers") or [])]:
        if isinstance(descriptor, dict) and "digest" in descriptor and not descriptor.get("urls"):
            try:
                digest = parse_digest(str(descriptor["digest"]))
            except Exception:  # a malformed digest in a manifest is the client's problem, not a prefetch's
                continue
            size = descriptor.get("size", 0)
            blobs[digest] = size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 0
    return list(blobs.items())


async def fill_in_background(
    fills: FillManager, digest: Digest, size: int, inflight: ByteLimit, counted: bool, repository: str = ""
) -> str:
    """Fill `digest` of `size` bytes as a background fill (reading on behalf of `repository`: the remote tier
    routes on it); "filled" (committed), "joined" (a fill a client started meanwhile committed it, or it is cached
    now), "skipped" (no free room) or "failed"."""
    await inflight.acquire(size)
    try:
        joined = fills.running(digest)
        fill = joined or fills.prefetch(digest, size, counted, repository)
        if fill is None:
            return "joined" if fills.store.contains(digest) else "skipped"
        assert fill.task is not None
        await asyncio.wait({fill.task})
        if fill.error is not None or not fill.committed:
            log.warning("background fill of %s failed: %s", digest, fill.error or "not committed")
            return "failed"
        return "joined" if joined is not None else "filled"
    finally:
        await inflight.release(size)


class Prefetcher:
    """Starts background fills of an image manifest's blobs when a client reads it (``fill.prefetch``)."""

    def __init__(self, links: LinkCache, fills: FillManager, settings: FillConfig) -> None:
        self._links = links
        self._fills = fills
        self._settings = settings
        self._inflight = ByteLimit(settings.prefetch_inflight_bytes)
        self._tasks: set[asyncio.Task[None]] = set()
        self._recent: OrderedDict[tuple[str, Digest], float] = OrderedDict()

    def manifest_served(self, repository: str, digest: Digest, data: bytes) -> None:
        """Manifest `digest` (`data`) of `repository` was served to a client allowed to pull `repository`: prefetch
        its blobs if it is an image manifest (an index is not: the client picks its platforms first)."""
        if not self._settings.prefetch or self._seen_lately(repository, digest):
            return
        manifest = document(data)
        if not isinstance(manifest.get("layers"), list):
            return
        blobs = [(digest, size) for digest, size in blob_descriptors(manifest) if size > 0]
        if not blobs:
            return
        task = asyncio.create_task(self._prefetch(repository, blobs), name=f"prefetch {repository}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _seen_lately(self, repository: str, digest: Digest) -> bool:
        now = time.monotonic()
        seen = self._recent.get((repository, digest))
        if seen is not None and now - seen < RECENT_SECONDS:
            return True
        self._recent[(repository, digest)] = now
        self._recent.move_to_end((repository, digest))
        while len(self._recent) > RECENT_MANIFESTS:
            self._recent.popitem(last=False)
        return False

    async def _prefetch(self, repository: str, blobs: list[tuple[Digest, int]]) -> None:
        budget = [self._settings.prefetch_max_bytes]

        async def one(digest: Digest, size: int) -> None:
            if self._fills.store.contains(digest) or self._fills.running(digest) is not None:
                return  # cached or filling already: nothing to prefetch
            try:  # the same link check a blob GET makes (its answer is kept: the client's GET checks nothing)
                linked = await self._links.is_linked(repository, "blob", digest)
            except Exception as error:  # the backend is down: the client's own requests will say so
                log.warning("prefetch: cannot check %s in %s: %s", digest, repository, error)
                return
            if not linked:
                return  # never fetch what the client may not read
            if size > budget[0]:
                metrics.prefetch_bytes.labels("skipped").inc(size)
                return
            budget[0] -= size
            result = await fill_in_background(self._fills, digest, size, self._inflight, True, repository)
            if result != "joined":  # a client's own fill got there first: not prefetched
                metrics.prefetch_bytes.labels(result).inc(size)

        # Each blob starts as soon as its own check answers (not after the slowest of them).
        await asyncio.gather(*(one(digest, size) for digest, size in blobs))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
