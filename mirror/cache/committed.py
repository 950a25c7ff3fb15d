"""The node's running fills, by digest, and the verified cache file of a digest once its fill is done.

Built before the cache and the backend stack (`mirror.compose`): the fill manager keeps `RunningFills`, and the
write-back of remote content (`mirror.upstream.writeback`) reads `CommittedFiles`, so neither needs the other.
"""

from __future__ import annotations

import asyncio

from mirror.cache.fill import Fill
from mirror.cache.store import ContentStore
from mirror.reference import Digest

# Fills in progress on this node: at most one per digest (kept by `FillManager`).
RunningFills = dict[Digest, Fill]


class CommittedFiles:
    """What write-back uploads: the verified cache file of a digest, once its running fill (if any) is done."""

    def __init__(self, store: ContentStore, running: RunningFills) -> None:
        self._store = store
        self._running = running

    async def __call__(self, digest: Digest) -> tuple[int, int] | None:
        """``(descriptor, size)`` of the committed file (the caller closes it), or None when it is not cached."""
        fill = self._running.get(digest)
        if fill is not None and fill.task is not None:
            await asyncio.wait({fill.task})
        cached = self._store.open(digest)
        return None if cached is None else (cached.fd, cached.size)
