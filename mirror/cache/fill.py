"""The fill engine: one backend read per digest per node, streamed to every waiting client as it lands.

A fill's first ranged GET (a small first part) also tells the blob's size; a fill started by a suffix Range
(an eStargz footer, ``bytes=-51``) makes that first GET a suffix GET instead, so the client's bytes and the
size come back in one round trip (S3 gives the total in Content-Range). The rest is planned into parts that
use the whole ``parallelism`` (`fillplan.py`), fetched with connections from the node-wide `ConnectionBudget` and
written into a sparse partial file (no preallocation: writes into preallocated, unwritten extents cost ~9× here)
by worker threads, so the event loop only moves bytes. Every request for the digest — full or Range, arriving
before or during the fill — reads from that one partial file as soon as its bytes exist.

What a waiting client needs comes first: a reader blocked at a position nobody is fetching yet (a Range into a
later part, the eStargz footer at the very end) splits the part there and gets a connection ahead of read-ahead,
so a cold Range costs about one round trip after the size is known. Idle connections split the remaining tail
of slow parts, at most once per 256 MiB of blob (each such cut loses what was in flight on the GET it cuts: see
`fillplan.STEAL_BYTES`). Splits never fetch a byte twice.

The sha256 runs over the contiguous prefix as it grows. Guarantees:

* a full GET (the whole blob) gets its last byte only after the content is verified, synced and committed (so
  the next request is a hit): a client never receives a "successful" corrupt transfer;
* a Range GET completes as soon as its bytes are in the file: a range cannot be verified on its own, and the
  clients that read ranges (resumed downloads, lazy-pulling snapshotters) verify at their own level;
* a mismatch aborts every stream still in flight, and nothing unverified is committed: the file is fdatasync'ed
  after verification and only then handed to the store (a power loss never leaves a hit pointing at zeros).

A blob larger than the whole cache, or one that does not fit beside the partial files of running fills, is
served through the same way but not committed (``mirror_fill_uncached_total``). Fills are tasks owned by
`FillManager`, not by requests: a client that disconnects never cancels a fill; a fill that only requests which
failed their repository check asked for is stopped (`FillManager.abandon`).

Three modules: `fillview.py` holds what readers see and wait on, `fillfetch.py` schedules and fetches the parts
and hashes the prefix, this one runs a fill from its first GET to the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import time
from pathlib import Path
from typing import AsyncIterator, Protocol

from mirror import digests, metrics
from mirror.cache.direct import FillFailed, WrongSize
from mirror.cache.fillfetch import PartFetching, close_stream
from mirror.cache.fillview import READ_CHUNK
from mirror.cache.hedge import FirstByteTimes
from mirror.cache.partialfile import open_sparse
from mirror.cache.fillplan import ConnectionBudget, Part, PartTable, plan_parts, steals_allowed
from mirror.cache.store import ContentStore
from mirror.config import FillConfig
from mirror.reference import Digest
from mirror.upstream import NotFound, Upstream

log = logging.getLogger(__name__)

DISK_MARGIN = 64 * 1024 * 1024  # free space a partial file must leave on the cache's filesystem
# After the size is told, read-ahead waits this long before it picks its first parts: the readers that waited for
# the size resume and say where they start (`_wait_for`: a Range into a later part, the eStargz footer), so the
# first connections go to their bytes, not to read-ahead they would wait behind. A bounded window, not an event:
# a reader told the size may never read (a HEAD, a client gone), so there is no count of readers to wait for.
READERS_PLACE_WINDOW = 0.002

__all__ = ["Fill", "FillFailed", "FillHost", "Part", "READ_CHUNK", "plan_parts"]


class FillHost(Protocol):
    """What a fill uses of the node that runs it (`mirror.cache.fills.FillManager`), declared here so that the
    fill does not import its manager (the manager imports the fill)."""

    store: ContentStore
    upstream: Upstream
    settings: FillConfig
    budget: ConnectionBudget
    first_byte_times: FirstByteTimes

    def claim_room(self, size: int) -> bool:
        """Count `size` bytes of a partial file against the cache; False when there is no room."""

    def finished(self, fill: "Fill") -> None:
        """`fill` is committed or failed; the host takes back its claimed room (`Fill.release_room`)."""


class Fill(PartFetching):
    """One digest being copied from the backend into a partial file."""

    def __init__(
        self, digest: Digest, manager: FillHost, tail: int = 0, repository: str = "", size: int | None = None
    ) -> None:
        """`repository`: the one whose request started the fill ("" for none); the remote tier routes on it."""
        super().__init__(
            digest, manager.upstream, manager.budget, manager.settings, manager.first_byte_times, repository
        )
        self._known_size = size  # a manifest's descriptor said it: no first GET to learn it (see `_checked_first`)
        self._tail = tail  # a suffix Range started this fill: its first GET reads the last `tail` bytes
        self._manager = manager
        self._store = manager.store
        self._path: Path = self._store.new_partial_path()
        self.committed = False
        self._reserved = 0
        self.task: asyncio.Task[None] | None = None

    def release_room(self) -> int:
        """The bytes of cache room this fill claimed, now given back (its host subtracts them)."""
        reserved, self._reserved = self._reserved, 0
        return reserved

    def hold_room(self, size: int) -> None:
        """Its host claimed `size` bytes of free room for it before it started (a prefetch: it never evicts)."""
        self._reserved = size

    # -- the fill itself ----------------------------------------------------------------------------------

    async def run(self) -> None:
        started = time.monotonic()
        result = "error"
        try:
            result = await self._fill()
        except BaseException as error:
            result = self._failed(error)
            if not isinstance(error, Exception):
                raise
        finally:
            self._manager.finished(self)
            if not (self._sized.done() and isinstance(self._sized.exception(), NotFound)):
                metrics.fills.labels(result).inc()
                metrics.fill_duration.observe(time.monotonic() - started)
            if self._threads:
                await asyncio.wait(self._threads)  # no worker thread may touch the descriptor after close
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._notify()

    async def _fill(self) -> str:
        """The fill from first GET to commit; its result label (``ok``, ``uncached``)."""
        begun = await self._begin()
        if begun is None:  # the local disk cannot take it: readers stream from the backend themselves
            return "uncached"
        size, first_start, first_chunks, cacheable = begun
        first = self._plan(size, first_start)
        if self._known_size is None:  # a size from a manifest is told once the first GET confirmed it
            self._sized.set_result(size)
        await asyncio.sleep(READERS_PLACE_WINDOW)
        hashing = asyncio.create_task(self._hash_prefix())
        try:
            await self._fetch_parts(first, first_chunks)
            actual = await hashing
        finally:
            hashing.cancel()
        try:
            digests.check(self.digest, actual, "backend content")
        except digests.DigestMismatch as mismatch:
            raise FillFailed(str(mismatch)) from mismatch
        if not self._sized.done():  # a manifest's size whose first GET failed and was retried: the digest confirms it
            self._sized.set_result(size)
        await self._in_thread(os.fdatasync, self._fd)  # little is left: the hasher synced as it went
        if cacheable and self._store.commit(self.digest, self._path, size):
            self.committed = True
            result = "ok"
        else:
            result = "uncached"
            self._path.unlink(missing_ok=True)
        self.verified = True  # a full GET's last byte goes out now: after it, the blob is a cache hit
        self._notify()
        return result

    async def _begin(self) -> tuple[int, int, AsyncIterator[bytes], bool] | None:
        """Take a connection, make the first GET and open the partial file: ``(size, start of the first GET, its
        stream, whether the blob will be committed)``, or None when the local disk cannot take the blob. On every
        way out but an opened file, the connection goes back and the first GET's stream is closed."""
        await self._budget.acquire(self, lambda: not self._background(), self._background)
        async with contextlib.AsyncExitStack() as undo:
            undo.callback(self._budget.release, self)
            if self._known_size is not None:  # planned from the manifest: every part may start at once
                size, first_start, first_chunks = self._known_size, 0, self._checked_first()
            else:  # the first GET also tells the size (Content-Range): no stat round trip first
                size, first_start, first_chunks = await self._read_first()
            undo.push_async_callback(close_stream, first_chunks)
            cacheable = self._reserved > 0 or self._claim_room(size)  # a prefetch claimed free room
            opened = self._open_partial(size)
            self.size = size
            if not opened:
                self.direct = True
                self._sized.set_result(size)
                return None
            undo.pop_all()
        return size, first_start, first_chunks, cacheable

    def _failed(self, error: BaseException) -> str:
        """Record why the fill stopped (readers raise it), drop the partial file; the result label."""
        mismatch = isinstance(error, FillFailed) and isinstance(error.__cause__, digests.DigestMismatch)
        if isinstance(error, OSError):  # the local disk (ENOSPC, EMFILE...): a 503 for the client, not a 500
            error = FillFailed(f"local cache disk: {error}")
        self.error = error
        if not self._sized.done():
            self._sized.set_exception(error if isinstance(error, Exception) else FillFailed("fill stopped"))
        result = "error"
        if mismatch:
            result = "digest_mismatch"
            log.error("fill %s: %s", self.digest, error)
        elif isinstance(error, asyncio.CancelledError):
            result = "stopped"
        elif not isinstance(error, NotFound):
            log.warning("fill %s failed: %s", self.digest, error)
        self._path.unlink(missing_ok=True)
        return result

    async def _read_first(self) -> tuple[int, int, AsyncIterator[bytes]]:
        """``(size, start, stream)`` of the first GET: the blob's first part, or, for a fill a suffix Range
        started, its last `_tail` bytes (one round trip to the client's bytes, not size first, then range)."""
        if 0 < self._tail <= self._settings.first_part_size:  # a longer suffix is a big read: planned as usual
            return await self._upstream.read_last(self._key, self._tail)
        size, chunks = await self._upstream.read_first(self._key, self._settings.first_part_size)
        return size, 0, chunks

    async def _checked_first(self) -> AsyncIterator[bytes]:
        """The first part's GET of a fill planned from a manifest's size: the size the backend tells (in
        Content-Range) must be that size, else the fill fails (the digest check verifies the bytes)."""
        size, chunks = await self._upstream.read_first(self._key, self._settings.first_part_size)
        try:
            if size != self._known_size:
                raise WrongSize(f"the backend holds {size} bytes, the manifest said {self._known_size}")
            if not self._sized.done():
                self._sized.set_result(size)
            async for chunk in chunks:
                yield chunk
        finally:
            await close_stream(chunks)

    def _plan(self, size: int, first_start: int) -> Part | None:
        """Plan the parts; the one the first GET is fetching (``[first_start, …)``) is returned, marked started.
        A first GET at the tail leaves ``[0, first_start)`` to be planned as a blob of its own."""
        settings = self._settings
        parallelism = self._budget.fair_share(settings.parallelism, self, PartFetching.unstarted_parts_of)
        ahead = first_start or size
        planned = plan_parts(ahead, settings.first_part_size, settings.part_size, parallelism, settings.min_part_size)
        if first_start:
            planned.append(Part(first_start, size))
        self.parts = PartTable(planned, settings.min_part_size, steals_allowed(size))
        first = planned[-1] if first_start else (planned[0] if planned else None)
        if first is not None:
            first.started = True
        return first

    def _claim_room(self, size: int) -> bool:
        """Whether this blob will be committed: it must fit in the cache beside the partials of running fills."""
        if size > self._store.size_limit:
            reason = "too_large"
        elif self._manager.claim_room(size):
            self._reserved = size
            return True
        else:
            reason = "no_room"
        metrics.fill_uncached.labels(reason).inc()
        log.warning("fill %s: %d bytes served through without caching (%s)", self.digest, size, reason)
        return False

    def _open_partial(self, size: int) -> bool:
        """Open the partial file; False (and a metric and a log line) when the local disk cannot take it."""
        try:
            if shutil.disk_usage(self._path.parent).free < size + DISK_MARGIN:
                raise OSError(errno.ENOSPC, f"less than {size + DISK_MARGIN} bytes free")
            self._fd = open_sparse(self._path, size)
        except OSError as error:
            metrics.fill_uncached.labels("no_disk").inc()
            log.warning("fill %s: %d bytes served straight from the backend, not cached: %s", self.digest, size, error)
            return False
        return True
