"""Fetching a fill's parts: the scheduler that hands connections to parts (a client's byte first, then
read-ahead, then splits of slow parts), one part's ranged GET with retries and hedging, and the hash over the
contiguous prefix as it grows. `Fill` (`fill.py`) runs these; `FillView` (`fillview.py`) holds what they write.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Callable, Hashable

from mirror import digests, metrics
from mirror.cache.direct import FillFailed
from mirror.cache.fillview import FillView
from mirror.cache.hedge import FirstByteTimes, hedges_allowed, open_hedged, prepend
from mirror.cache.partialfile import PartWriter, hash_range
from mirror.cache.fillplan import ConnectionBudget, Part
from mirror.config import FillConfig
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Upstream

SYNC_EVERY = 64 * 1024 * 1024
HASH_CHUNK = 4 * 1024 * 1024  # one thread hop per 4 MiB window of the file (a multiple of mmap's granularity)
URGENT_FACTOR = 2  # a fill may open up to this × `parallelism` GETs when clients wait on parts nobody fetches
PART_ATTEMPTS = 5
RETRY_BASE_DELAY = 0.2


async def close_stream(chunks: AsyncIterator[bytes]) -> None:
    """Close a backend stream early (they are async generators; `AsyncIterator` does not declare `aclose`)."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


class PartFetching(FillView):
    """The fetching side of a fill: which part gets the next connection, and each part's GET into the file."""

    def __init__(
        self, digest: Digest, upstream: Upstream, budget: ConnectionBudget, settings: FillConfig,
        first_byte_times: FirstByteTimes, repository: str,
    ) -> None:
        super().__init__(digest, upstream, budget, settings.min_part_size, repository)
        self._settings = settings
        self._first_byte_times = first_byte_times
        self.prefetched = False  # a background fill (prefetch, warming): lowest priority until a client joins
        self.entitled = 0  # requests that passed their repository check
        self.checking = 0  # requests still in their check
        self._hedges = 0
        self._threads: set[asyncio.Future[Any]] = set()
        self._write_lock = asyncio.Lock()  # one write into the file at a time (see `PartWriter`)

    @staticmethod
    def unstarted_parts_of(owner: Hashable) -> int | None:
        """Parts nobody fetches yet of a holder of budget connections, when it is a fill that planned its parts
        (None otherwise, and while a fill's first GET has not told the size)."""
        if isinstance(owner, PartFetching) and owner.parts:
            return owner.parts.unstarted()
        return None

    def _background(self) -> bool:
        """A prefetch no client has joined: its GETs wait behind every other fill's."""
        return self.prefetched and self.entitled == 0 and self.checking == 0

    def _in_thread(self, function: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        """Run blocking file work in a worker thread; `run` waits for all of it before closing the file."""
        future = asyncio.ensure_future(asyncio.to_thread(function, *args))
        self._threads.add(future)
        future.add_done_callback(self._threads.discard)
        return future

    # -- scheduling parts ---------------------------------------------------------------------------------

    async def _fetch_parts(self, first: Part | None, first_chunks: AsyncIterator[bytes]) -> None:
        if first is None:
            self._budget.release(self)
            await close_stream(first_chunks)
            return
        active = {asyncio.create_task(self._fetch_part(first, first_chunks))}
        try:
            while not self.parts.complete:
                for task in [task for task in active if task.done()]:
                    active.discard(task)
                    task.result()
                self._changed.clear()
                if self._may_start(len(active)):
                    await self._budget.acquire(self, self._has_urgent, self._background)
                    part = self._pick_part()
                    if part is None:
                        self._budget.release(self)
                    else:
                        active.add(asyncio.create_task(self._fetch_part(part)))
                    continue
                changed = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait([*active, changed], return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
            await asyncio.gather(*active)
        except BaseException:  # a failed part or a stopped fill: no part task outlives the fill
            for task in active:
                task.cancel()
            await asyncio.gather(*active, return_exceptions=True)
            raise

    def _may_start(self, active: int) -> bool:
        if active < self._settings.parallelism:
            return self.parts.has_work()
        # Beyond read-ahead, each waiting Range gets a GET of its own (16 scattered ranges: 16 GETs at once), within
        # the node's budget, which hands them connections before any read-ahead.
        return active < URGENT_FACTOR * self._settings.parallelism and self._has_urgent()

    def _has_urgent(self) -> bool:
        return self.parts.has_urgent(self._wants)

    def _pick_part(self) -> Part | None:
        part = self.parts.pick(sorted(self._wants))
        if part is not None:
            self._changed.set()
        return part

    # -- fetching and writing one part ------------------------------------------------------------------

    async def _fetch_part(self, part: Part, opened: AsyncIterator[bytes] | None = None) -> None:
        """Fetch `part` (whose `end` may shrink while it runs) into the file; releases its connection."""
        attempt = 0
        writer = PartWriter(self._fd, part, self._in_thread, self._notify, self._write_lock)
        try:
            while part.start + part.fetched < part.end:
                chunks, opened = opened, None
                try:
                    if chunks is None:
                        chunks = await self._open_range(part.start + part.fetched, part.end)
                    await self._write_chunks(part, chunks, writer)
                except (BackendError, NotFound) as error:
                    attempt += 1
                    if attempt >= PART_ATTEMPTS:
                        raise FillFailed(f"part {part.start}-{part.end - 1} failed {attempt} times: {error}") from error
                    metrics.fill_part_retries.inc()
                    await asyncio.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1))
                finally:
                    if chunks is not None:
                        await close_stream(chunks)
            await writer.flush()
        finally:
            self._budget.release(self)
            self._changed.set()

    @staticmethod
    async def _write_chunks(part: Part, chunks: AsyncIterator[bytes], writer: PartWriter) -> None:
        """Hand `chunks` to the part's writer until the part's (possibly shrunk) end."""
        async for chunk in chunks:
            wanted = part.end - (part.start + part.fetched)
            if len(chunk) > wanted:
                chunk = chunk[:wanted]
            part.fetched += len(chunk)
            await writer.add(chunk)
            if part.start + part.fetched >= part.end:
                break  # done, or the part was cut short by a split

    async def _open_range(self, start: int, end: int) -> AsyncIterator[bytes]:
        """A ranged GET of ``[start, end)``, raced by a second one if its first byte is late (`hedge.py`)."""
        stream, first = await open_hedged(
            lambda: self._upstream.read_range(self._key, start, end),
            self._first_byte_times, self._budget, self, self._may_hedge,
        )
        return prepend(first, stream)

    def _may_hedge(self) -> bool:
        if self._hedges >= hedges_allowed(self.size or 0):
            return False
        self._hedges += 1
        return True

    async def _hash_prefix(self) -> str:
        hasher = digests.hasher(self.digest)
        hashed = 0
        size = self.size or 0
        while hashed < size:
            available = self.available_end(hashed)
            if available - hashed < min(HASH_CHUNK, size - hashed):  # one thread hop per HASH_CHUNK, not per write batch
                event = self._progress
                await event.wait()
                continue
            length = min(HASH_CHUNK, available - hashed)
            await self._in_thread(hash_range, hasher, self._fd, hashed, length)
            hashed += length
            if hashed % SYNC_EVERY < length:  # write back as the fill goes, so the final fdatasync is short
                await self._in_thread(os.fdatasync, self._fd)
        return hasher.hexdigest()
