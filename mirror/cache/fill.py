"""The fill engine: one backend read per digest per node, streamed to every waiting client as it lands.

A fill's first ranged GET (a small first part) also tells the blob's size; a fill started by a suffix Range
(an eStargz footer, ``bytes=-51``) makes that first GET a suffix GET instead, so the client's bytes and the
size come back in one round trip (S3 gives the total in Content-Range). The rest is planned into parts that
use the whole ``parallelism`` (`parts.py`), fetched with connections from the node-wide `ConnectionBudget` and
written into a sparse partial file (no preallocation: writes into preallocated, unwritten extents cost ~9× here)
by worker threads, so the event loop only moves bytes. Every request for the digest — full or Range, arriving
before or during the fill — reads from that one partial file as soon as its bytes exist.

What a waiting client needs comes first: a reader blocked at a position nobody is fetching yet (a Range into a
later part, the eStargz footer at the very end) splits the part there and gets a connection ahead of read-ahead,
so a cold Range costs about one round trip after the size is known. Idle connections split the remaining tail
of slow parts, so the last seconds of a fill still use the whole parallelism. Splits never fetch a byte twice.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol

from mirror import digests, layout, metrics
from mirror.cache.direct import FillFailed, stream_direct
from mirror.cache.hedge import FirstByteTimes, hedges_allowed, open_hedged, prepend
from mirror.cache.partial import PartWriter, hash_range, open_sparse
from mirror.cache.parts import ConnectionBudget, Part, PartTable, plan_parts
from mirror.cache.store import ContentStore
from mirror.config import FillConfig
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Upstream

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
SYNC_EVERY = 64 * 1024 * 1024
HASH_CHUNK = 4 * 1024 * 1024  # one reused buffer per fill: no allocation per read (allocator arenas keep them)
DISK_MARGIN = 64 * 1024 * 1024  # free space a partial file must leave on the cache's filesystem
URGENT_FACTOR = 2  # a fill may open up to this × `parallelism` GETs when clients wait on parts nobody fetches
PART_ATTEMPTS = 5
RETRY_BASE_DELAY = 0.2

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


class Fill:
    """One digest being copied from the backend into a partial file."""

    def __init__(
        self, digest: Digest, manager: FillHost, tail: int = 0, repository: str = "", size: int | None = None
    ) -> None:
        """`repository`: the one whose request started the fill ("" for none); the remote tier routes on it."""
        self.digest = digest
        self._known_size = size  # a manifest's descriptor said it: no first GET to learn it (see `_checked_first`)
        self.prefetched = False  # a background fill (prefetch, warming): lowest priority until a client joins
        self._tail = tail  # a suffix Range started this fill: its first GET reads the last `tail` bytes
        self._manager = manager
        self._store = manager.store
        self._upstream = manager.upstream
        self._settings = manager.settings
        self._budget = manager.budget
        self._key = layout.blob_data(digest, repository)
        self._path: Path = self._store.new_partial_path()
        self._fd = -1
        self.size: int | None = None
        self.parts = PartTable([], manager.settings.min_part_size)
        self.error: BaseException | None = None
        self.verified = False
        self.direct = False  # no room on the local disk: readers stream from the backend themselves
        self.committed = False
        self.entitled = 0  # requests that passed their repository check
        self.checking = 0  # requests still in their check
        self._reserved = 0
        self._hedges = 0
        self._wants: Counter[int] = Counter()
        self._sized = asyncio.get_running_loop().create_future()
        self._progress = asyncio.Event()
        self._changed = asyncio.Event()
        self._threads: set[asyncio.Future[Any]] = set()
        self.task: asyncio.Task[None] | None = None

    # -- readers -------------------------------------------------------------------------------------------

    async def wait_size(self) -> int:
        """The blob's size, once the backend has told it (raises NotFound/BackendError from the first GET)."""
        return await asyncio.shield(self._sized)

    def release_room(self) -> int:
        """The bytes of cache room this fill claimed, now given back (its host subtracts them)."""
        reserved, self._reserved = self._reserved, 0
        return reserved

    def hold_room(self, size: int) -> None:
        """Its host claimed `size` bytes of free room for it before it started (a prefetch: it never evicts)."""
        self._reserved = size

    def open_reader(self) -> int | None:
        """A private descriptor on the partial file (valid across the commit rename); None once finished;
        -1 when the local disk could not take the blob and readers stream it straight from the backend."""
        if self.direct:
            return -1
        if self._fd < 0:
            if self.error is not None:
                raise FillFailed(str(self.error)) from self.error
            return None
        return os.dup(self._fd)

    def available_end(self, position: int) -> int:
        """End of the bytes already written contiguously from `position`."""
        return self.parts.available_end(position)

    async def spans(
        self, start: int, end: int, client_gone: "asyncio.Future[None] | None" = None
    ) -> AsyncIterator[tuple[int, int]]:
        """Yield ``(position, available)``: consecutive ranges of ``[start, end)`` as they are in the partial file
        (where a reader may pread them, or the kernel send them). A read of the whole blob gets its last byte
        only after the content is verified; a Range completes as soon as its bytes are written.

        Ends early, without an error, if `client_gone` completes while waiting for the fill: the caller knows its
        client has gone and sends nothing more."""
        position = start
        whole = start == 0 and end == self.size
        while position < end:
            if self.error is not None:
                raise FillFailed(str(self.error)) from self.error
            limit = end - 1 if whole and not self.verified else end
            available = min(self.available_end(position), limit)
            if available <= position:
                if not await self._wait_for(position, client_gone):
                    return
                continue
            yield position, available
            position = available

    async def stream(
        self, fd: int, start: int, end: int, client_gone: "asyncio.Future[None] | None" = None
    ) -> AsyncIterator[bytes]:
        """Yield bytes ``[start, end)`` as they land (see `spans`), read from `fd`; closes `fd` in every case.
        With no local file (``fd == -1``) the bytes come straight from the backend."""
        if fd < 0:
            whole = start == 0 and end == self.size
            async for chunk in stream_direct(self._upstream, self._budget, self._key, start, end, whole):
                yield chunk
            return
        try:
            async with contextlib.aclosing(self.spans(start, end, client_gone)) as spans:
                async for position, available in spans:
                    while position < available:
                        chunk = os.pread(fd, min(READ_CHUNK, available - position), position)
                        position += len(chunk)
                        yield chunk
        finally:
            os.close(fd)

    async def _wait_for(self, position: int, client_gone: "asyncio.Future[None] | None" = None) -> bool:
        """Wait for progress, telling the scheduler a client needs the byte at `position`; False if
        `client_gone` completed first."""
        event = self._progress
        self._wants[position] += 1
        if self.parts.has_urgent((position,)):
            self._changed.set()  # only a byte nobody fetches yet needs the scheduler; streaming readers do not
        try:
            if client_gone is None:
                await event.wait()
                return True
            progress = asyncio.ensure_future(event.wait())
            try:
                await asyncio.wait({progress, client_gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                progress.cancel()
            return not client_gone.done()
        finally:
            self._wants[position] -= 1
            if self._wants[position] <= 0:
                del self._wants[position]

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    # -- the fill itself ----------------------------------------------------------------------------------

    async def run(self) -> None:
        started = time.monotonic()
        result = "error"
        try:
            await self._budget.acquire(self, lambda: not self._background(), self._background)
            try:
                if self._known_size is not None:  # planned from the manifest: every part may start at once
                    size, first_start, first_chunks = self._known_size, 0, self._checked_first()
                else:  # the first GET also tells the size (Content-Range): no stat round trip first
                    size, first_start, first_chunks = await self._read_first()
            except BaseException:
                self._budget.release(self)
                raise
            try:
                cacheable = self._reserved > 0 or self._claim_room(size)  # a prefetch claimed free room
                opened = self._open_partial(size)
            except BaseException:
                self._budget.release(self)
                await first_chunks.aclose()  # type: ignore[attr-defined]
                raise
            self.size = size
            if not opened:
                self._budget.release(self)
                await first_chunks.aclose()  # type: ignore[attr-defined]
                self.direct = True
                self._sized.set_result(size)
                result = "uncached"
                return
            first = self._plan(size, first_start)
            self._sized.set_result(size)
            await asyncio.sleep(0.002)  # readers waiting for the size say where they start before read-ahead begins
            hashing = asyncio.create_task(self._hash_prefix())
            try:
                await self._fetch_parts(first, first_chunks)
                actual = await hashing
            finally:
                hashing.cancel()
            try:
                digests.check(self.digest, actual, "backend content")
            except digests.DigestMismatch as mismatch:
                result = "digest_mismatch"
                raise FillFailed(str(mismatch)) from mismatch
            await self._in_thread(os.fdatasync, self._fd)  # little is left: the hasher synced as it went
            if cacheable and self._store.commit(self.digest, self._path, size):
                self.committed = True
                result = "ok"
            else:
                result = "uncached"
                self._path.unlink(missing_ok=True)
            self.verified = True  # a full GET's last byte goes out now: after it, the blob is a cache hit
            self._notify()
        except BaseException as error:
            if isinstance(error, OSError):  # the local disk (ENOSPC, EMFILE...): a 503 for the client, not a 500
                error = FillFailed(f"local cache disk: {error}")
            self.error = error
            if not self._sized.done():
                self._sized.set_exception(error if isinstance(error, Exception) else FillFailed("fill stopped"))
            if result == "digest_mismatch":
                log.error("fill %s: %s", self.digest, error)
            elif isinstance(error, asyncio.CancelledError):
                result = "stopped"
            elif not isinstance(error, NotFound):
                log.warning("fill %s failed: %s", self.digest, error)
            self._path.unlink(missing_ok=True)
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
                raise FillFailed(f"the backend holds {size} bytes, the manifest said {self._known_size}")
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    def _background(self) -> bool:
        """A prefetch no client has joined: its GETs wait behind every other fill's."""
        return self.prefetched and self.entitled == 0 and self.checking == 0

    def _plan(self, size: int, first_start: int) -> Part | None:
        """Plan the parts; the one the first GET is fetching (``[first_start, …)``) is returned, marked started.
        A first GET at the tail leaves ``[0, first_start)`` to be planned as a blob of its own."""
        settings = self._settings
        parallelism = self._budget.fair_share(settings.parallelism)
        ahead = first_start or size
        planned = plan_parts(ahead, settings.first_part_size, settings.part_size, parallelism, settings.min_part_size)
        if first_start:
            planned.append(Part(first_start, size))
        self.parts = PartTable(planned, settings.min_part_size)
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
            await first_chunks.aclose()  # type: ignore[attr-defined]
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
        except BaseException:
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
        writer = PartWriter(self._fd, part, self._in_thread, self._notify)
        try:
            while part.start + part.fetched < part.end:
                chunks, opened = opened, None
                try:
                    if chunks is None:
                        chunks = await self._open_range(part.start + part.fetched, part.end)
                    async for chunk in chunks:
                        wanted = part.end - (part.start + part.fetched)
                        if len(chunk) > wanted:
                            chunk = chunk[:wanted]
                        part.fetched += len(chunk)
                        await writer.add(chunk)
                        if part.start + part.fetched >= part.end:
                            break  # done, or the part was cut short by a split
                except (BackendError, NotFound) as error:
                    attempt += 1
                    if attempt >= PART_ATTEMPTS:
                        raise FillFailed(f"part {part.start}-{part.end - 1} failed {attempt} times: {error}") from error
                    metrics.fill_part_retries.inc()
                    await asyncio.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1))
                finally:
                    if chunks is not None:
                        await chunks.aclose()  # type: ignore[attr-defined]
            await writer.flush()
        finally:
            self._budget.release(self)
            self._changed.set()

    async def _open_range(self, start: int, end: int) -> AsyncIterator[bytes]:
        """A ranged GET of ``[start, end)``, raced by a second one if its first byte is late (`hedge.py`)."""
        stream, first = await open_hedged(
            lambda: self._upstream.read_range(self._key, start, end),
            self._manager.first_byte_times, self._budget, self, self._may_hedge,
        )
        return prepend(first, stream)

    def _may_hedge(self) -> bool:
        if self._hedges >= hedges_allowed(self.size or 0):
            return False
        self._hedges += 1
        return True

    async def _hash_prefix(self) -> str:
        hasher = digests.hasher(self.digest)
        buffer = bytearray(min(HASH_CHUNK, self.size or 0))
        hashed = 0
        size = self.size or 0
        while hashed < size:
            available = self.available_end(hashed)
            if available - hashed < min(HASH_CHUNK, size - hashed):  # one thread hop per HASH_CHUNK, not per write batch
                event = self._progress
                await event.wait()
                continue
            length = min(HASH_CHUNK, available - hashed)
            await self._in_thread(hash_range, hasher, self._fd, hashed, memoryview(buffer)[:length])
            hashed += length
            if hashed % SYNC_EVERY < length:  # write back as the fill goes, so the final fdatasync is short
                await self._in_thread(os.fdatasync, self._fd)
        return hasher.hexdigest()
