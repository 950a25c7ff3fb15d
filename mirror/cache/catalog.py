"""``/v2/_catalog``: the repositories in storage, found as registry:2 finds them.

A repository is a directory under ``repositories/`` holding ``_manifests``; names may nest (``team/app`` and
``team/app/tools``). The walk goes depth first in registry:2's order (path components compared one by one, so a
directory's own name comes before everything below it), which makes each page a prefix of the rest: it skips
whole subtrees before ``last`` and stops as soon as the page (plus one entry, to know whether a next page exists)
is full. The children of a directory are listed a few at a time ahead of the walk, with a node-wide bound on LISTs
in flight, and listings are kept briefly (bounded in bytes), so repeated or paged requests do not walk again.
"""

from __future__ import annotations

import asyncio
from collections import deque

from cachetools import TTLCache

from mirror import layout
from mirror.upstream import BackendError, Listing, Reader
from mirror.domain import Unavailable

MARKER = "_manifests"
LISTS_IN_FLIGHT = 8  # LISTs of one node at once, whatever the number of catalog requests
PREFETCH = 4  # children of one directory listed ahead of the walk
LISTING_TTL = 10.0
LISTING_CACHE_BYTES = 16 * 1024 * 1024

Path = tuple[str, ...]


def _listing_size(listing: Listing) -> int:
    return 64 + sum(len(name) + 56 for name in listing.directories)


class Catalog:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._lists = asyncio.Semaphore(LISTS_IN_FLIGHT)
        self._listings: TTLCache[Path, Listing] = TTLCache(
            maxsize=LISTING_CACHE_BYTES, ttl=LISTING_TTL, getsizeof=_listing_size
        )

    async def page(self, last: str | None, limit: int) -> tuple[list[str], bool]:
        """At most `limit` repository names after `last`, in registry:2's order, and whether more follow."""
        after: Path | None = tuple(last.split("/")) if last else None
        found: list[str] = []
        try:
            await self._walk((), await self._list(()), after, found, limit + 1)
        except BackendError as error:
            raise Unavailable.of(error) from error
        return found[:limit], len(found) > limit

    async def _walk(self, path: Path, listing: Listing, after: Path | None, found: list[str], want: int) -> None:
        if path and MARKER in listing.directories and (after is None or path > after):
            found.append("/".join(path))
        children = [
            path + (child,)
            for child in sorted(listing.directories)
            if not child.startswith("_") and _may_hold_later(path + (child,), after)
        ]
        ahead: deque[tuple[Path, asyncio.Future[Listing]]] = deque()
        position = 0
        try:
            while len(found) < want and (ahead or position < len(children)):
                while position < len(children) and len(ahead) < PREFETCH:
                    ahead.append((children[position], asyncio.ensure_future(self._list(children[position]))))
                    position += 1
                child, listing_task = ahead.popleft()
                await self._walk(child, await listing_task, after, found, want)
        finally:
            for _, pending in ahead:
                pending.cancel()
            await asyncio.gather(*(pending for _, pending in ahead), return_exceptions=True)

    async def _list(self, path: Path) -> Listing:
        cached = self._listings.get(path)
        if cached is not None:
            return cached
        directory = "/".join((layout.REPOSITORIES, *path))
        async with self._lists:
            listing = await self._reader.list(directory)
        self._listings[path] = listing
        return listing


def _may_hold_later(path: Path, after: Path | None) -> bool:
    """Whether `path` or anything below it can come after `after` (False for a subtree wholly before it)."""
    return after is None or path > after or after[: len(path)] == path
