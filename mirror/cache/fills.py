"""The node's fills: at most one per digest, the connection budget they share, and the disk room they claim."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from mirror import metrics
from mirror.cache.committed import RunningFills
from mirror.cache.fill import Fill
from mirror.cache.hedge import FirstByteTimes
from mirror.cache.fillplan import ConnectionBudget
from mirror.cache.store import ContentStore
from mirror.config import FillConfig
from mirror.reference import Digest
from mirror.upstream import Upstream

# Blobs prefetched and not yet asked for by a client, remembered to count ``mirror_prefetch_served_bytes``.
PREFETCHED_REMEMBERED = 4096


class FillManager:
    """At most one fill per digest on this node; later requests join the running one. Owns the node's
    connection budget and the disk room claimed by running fills."""

    def __init__(
        self, store: ContentStore, upstream: Upstream, settings: FillConfig, running: RunningFills | None = None
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.settings = settings
        self.budget = ConnectionBudget(settings.max_connections, reserve=settings.max_connections // 4)
        self.first_byte_times = FirstByteTimes()
        self._running: RunningFills = {} if running is None else running
        self._claimed = 0
        self._prefetched: OrderedDict[Digest, int] = OrderedDict()

    def join(self, digest: Digest, entitled: bool = True, tail: int = 0, repository: str = "") -> Fill:
        """The running fill for `digest`, starting one if there is none. A caller that joins before its
        repository check passed says ``entitled=False`` and then calls `entitle` or `abandon`. A caller that
        wants the last `tail` bytes (a suffix Range) has a fill it starts read them first; a fill it starts reads
        on behalf of `repository` (the remote tier routes on it)."""
        fill = self._running.get(digest)
        if fill is not None:
            metrics.fill_waiters.inc()
        else:
            fill = Fill(digest, self, tail, repository)
            self._running[digest] = fill
            fill.task = asyncio.create_task(self._run(fill), name=f"fill {digest}")
        if entitled:
            fill.entitled += 1
        else:
            fill.checking += 1
        return fill

    def prefetch(self, digest: Digest, size: int, counted: bool = True, repository: str = "") -> Fill | None:
        """Start a background fill of `digest` planned from `size` (a manifest's descriptor: no GET first to learn
        it), into free room only: its room is claimed now, so it never evicts anything. None when it is cached,
        already filling, or does not fit beside the cache's content and the running fills. `counted`: a client's
        first request of it counts in ``mirror_prefetch_served_bytes``. `repository`: the one whose manifest named
        it (the remote tier routes the fill's reads on it, as for a client's fill)."""
        if size <= 0 or digest in self._running or self.store.contains(digest) or self.free_room() < size:
            return None
        fill = Fill(digest, self, repository=repository, size=size)
        fill.prefetched = True
        fill.hold_room(size)
        self._claimed += size
        self._running[digest] = fill
        fill.task = asyncio.create_task(self._run(fill), name=f"prefetch {digest}")
        if counted:
            self._prefetched[digest] = size
            while len(self._prefetched) > PREFETCHED_REMEMBERED:
                self._prefetched.popitem(last=False)
        return fill

    def served(self, digest: Digest) -> None:
        """A client asked for `digest`: count it if a prefetch filled (or is filling) it for this request."""
        size = self._prefetched.pop(digest, None)
        if size is not None:
            metrics.prefetch_served_bytes.inc(size)

    def running(self, digest: Digest) -> Fill | None:
        """The fill of `digest` in progress on this node, if any (nothing is started)."""
        return self._running.get(digest)

    def entitle(self, fill: Fill) -> None:
        """A caller that joined before its check has passed it."""
        fill.checking -= 1
        fill.entitled += 1

    def abandon(self, fill: Fill) -> None:
        """A caller that joined before its check failed it: stop the fill if nobody else may wait for it."""
        fill.checking -= 1
        if fill.entitled == 0 and fill.checking == 0 and fill.task is not None and not fill.task.done():
            fill.task.cancel()

    def claim_room(self, size: int) -> bool:
        """Count a partial file of `size` bytes against the cache, evicting to make room; False if the partials
        of running fills leave no room for it."""
        if self._claimed + size > self.store.size_limit:
            return False
        self._claimed += size
        self.store.make_room(self._claimed)
        return True

    def free_room(self) -> int:
        """Bytes the cache can take without evicting anything (what warming may use: it never evicts)."""
        return self.store.size_limit - self.store.volume() - self._claimed

    def finished(self, fill: Fill) -> None:
        """`fill` is committed or failed: later requests start afresh, and its room is given back."""
        if self._running.get(fill.digest) is fill:
            del self._running[fill.digest]
        self._claimed -= fill.release_room()
        if not fill.committed:
            self._prefetched.pop(fill.digest, None)

    async def _run(self, fill: Fill) -> None:
        try:
            await fill.run()
        finally:
            if self._running.get(fill.digest) is fill:  # cancelled before it ever ran
                del self._running[fill.digest]

    async def close(self) -> None:
        tasks = [fill.task for fill in self._running.values() if fill.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
