"""The fill engine: one backend read per digest per node, streamed to every waiting client as it lands.

A fill learns the blob's size from a stat, preallocates a partial file, and fetches it as a small first part
(fast first byte) followed by ``part_size`` parts, ``parallelism`` ranged GETs at a time, each written at its
own offset. Every request for the digest — full or Range, arriving before or during the fill — reads from that
one partial file as soon as its bytes exist. The sha256 runs over the contiguous prefix as it grows; the file
is committed to the store only when it matches. On a mismatch nothing is committed and every stream is aborted.

No response is allowed to complete before the fill is verified: a reader holds back its last byte until
commit, so a client can never receive a "successful" corrupt transfer.

Fills are tasks owned by `FillManager`, not by requests: a client that disconnects never cancels a fill.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from mirror import layout, metrics
from mirror.cache.store import ContentStore
from mirror.config import FillConfig
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Upstream

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
HASH_CHUNK = 8 * 1024 * 1024
PART_ATTEMPTS = 5
RETRY_BASE_DELAY = 0.2


class FillFailed(Exception):
    """The fill could not produce verified content; streams reading from it must abort."""


class DigestMismatch(FillFailed):
    """The backend's bytes do not hash to the requested digest."""


@dataclass(slots=True)
class Part:
    start: int
    end: int
    written: int = 0

    @property
    def complete(self) -> bool:
        return self.start + self.written >= self.end


def plan_parts(size: int, first_part_size: int, part_size: int) -> list[Part]:
    """A small first part for a fast first byte, then `part_size` parts."""
    parts: list[Part] = []
    start = 0
    while start < size:
        length = first_part_size if not parts else part_size
        parts.append(Part(start, min(size, start + length)))
        start = parts[-1].end
    return parts


class Fill:
    """One digest being copied from the backend into a partial file."""

    def __init__(self, digest: Digest, store: ContentStore, upstream: Upstream, settings: FillConfig) -> None:
        self.digest = digest
        self._store = store
        self._upstream = upstream
        self._settings = settings
        self._key = layout.blob_data(digest)
        self._path: Path = store.new_partial_path()
        self._fd = -1
        self.size: int | None = None
        self.parts: list[Part] = []
        self.error: BaseException | None = None
        self.committed = False
        self._sized = asyncio.get_running_loop().create_future()
        self._progress = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # -- readers -------------------------------------------------------------------------------------------

    async def wait_size(self) -> int:
        """The blob's size, once the backend has told it (raises NotFound/BackendError from the stat)."""
        return await asyncio.shield(self._sized)

    def open_reader(self) -> int | None:
        """A private descriptor on the partial file (valid across the commit rename); None once finished."""
        if self._fd < 0:
            if self.error is not None:
                raise FillFailed(str(self.error)) from self.error
            return None
        return os.dup(self._fd)

    def available_end(self, position: int) -> int:
        """End of the bytes already written contiguously from `position`."""
        end = position
        for part in self.parts:
            if part.end <= end:
                continue
            if part.start > end:
                break
            written_to = part.start + part.written
            if written_to <= end:
                break
            end = written_to
            if not part.complete:
                break
        return end

    async def stream(self, fd: int, start: int, end: int) -> AsyncIterator[bytes]:
        """Yield bytes ``[start, end)`` as they land; the last byte only after the content is verified."""
        position = start
        try:
            while position < end:
                if self.error is not None:
                    raise FillFailed(str(self.error)) from self.error
                limit = end if self.committed else end - 1
                available = min(self.available_end(position), limit)
                if available <= position:
                    await self._wait_progress()
                    continue
                while position < available:
                    chunk = os.pread(fd, min(READ_CHUNK, available - position), position)
                    position += len(chunk)
                    yield chunk
        finally:
            os.close(fd)

    async def _wait_progress(self) -> None:
        event = self._progress
        await event.wait()

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    # -- the fill itself ----------------------------------------------------------------------------------

    async def run(self) -> None:
        started = time.monotonic()
        result = "error"
        try:
            # The first part's ranged GET also tells the size (Content-Range): no stat round trip first.
            size, first_chunks = await self._upstream.read_first(self._key, self._settings.first_part_size)
            self._open_partial(size)
            self.size = size
            self.parts = plan_parts(size, self._settings.first_part_size, self._settings.part_size)
            self._sized.set_result(size)
            hashing = asyncio.create_task(self._hash_prefix())
            try:
                await self._fetch_parts(first_chunks)
                actual = await hashing
            finally:
                hashing.cancel()
            if actual != self.digest.hex:
                result = "digest_mismatch"
                raise DigestMismatch(f"backend content hashes to {self.digest.algorithm}:{actual}")
            self._store.commit(self.digest, self._path, size)
            self.committed = True
            result = "ok"
        except BaseException as error:
            self.error = error
            if not self._sized.done():
                self._sized.set_exception(error if isinstance(error, Exception) else FillFailed("cancelled"))
            if result == "digest_mismatch":
                log.error("fill %s: %s", self.digest, error)
            elif not isinstance(error, NotFound):
                log.warning("fill %s failed: %s", self.digest, error)
            self._path.unlink(missing_ok=True)
            if not isinstance(error, Exception):
                raise
        finally:
            if not (self._sized.done() and isinstance(self._sized.exception(), NotFound)):
                metrics.fills.labels(result).inc()
                metrics.fill_duration.observe(time.monotonic() - started)
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._notify()

    def _open_partial(self, size: int) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        if size:
            try:
                os.posix_fallocate(self._fd, 0, size)
            except OSError:
                os.ftruncate(self._fd, size)

    async def _fetch_parts(self, first_chunks: AsyncIterator[bytes]) -> None:
        queue: asyncio.Queue[Part] = asyncio.Queue()
        for part in self.parts[1:]:
            queue.put_nowait(part)

        async def worker(opening: tuple[Part, AsyncIterator[bytes]] | None) -> None:
            if opening is not None:
                await self._fetch_part(*opening)
            while not queue.empty():
                await self._fetch_part(queue.get_nowait())

        if not self.parts:
            await first_chunks.aclose()  # type: ignore[attr-defined]
            return
        count = min(self._settings.parallelism, len(self.parts))
        workers = [asyncio.create_task(worker((self.parts[0], first_chunks) if index == 0 else None)) for index in range(count)]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    async def _fetch_part(self, part: Part, opened: AsyncIterator[bytes] | None = None) -> None:
        attempt = 0
        while not part.complete:
            chunks = opened or self._upstream.read_range(self._key, part.start + part.written, part.end)
            opened = None
            try:
                async for chunk in chunks:
                    os.pwrite(self._fd, chunk, part.start + part.written)
                    part.written += len(chunk)
                    self._notify()
            except (BackendError, NotFound) as error:
                attempt += 1
                if attempt >= PART_ATTEMPTS:
                    raise FillFailed(f"part {part.start}-{part.end - 1} failed {attempt} times: {error}") from error
                metrics.fill_part_retries.inc()
                await asyncio.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1))

    async def _hash_prefix(self) -> str:
        hasher = hashlib.new(self.digest.algorithm)
        hashed = 0
        size = self.size or 0
        while hashed < size:
            available = self.available_end(hashed)
            if available <= hashed:
                await self._wait_progress()
                continue
            length = min(HASH_CHUNK, available - hashed)
            await asyncio.to_thread(_hash_range, hasher, self._fd, hashed, length)
            hashed += length
        return hasher.hexdigest()


def _hash_range(hasher: "hashlib._Hash", fd: int, offset: int, length: int) -> None:
    hasher.update(os.pread(fd, length, offset))


class FillManager:
    """At most one fill per digest on this node; later requests join the running one."""

    def __init__(self, store: ContentStore, upstream: Upstream, settings: FillConfig) -> None:
        self._store = store
        self._upstream = upstream
        self._settings = settings
        self._running: dict[Digest, Fill] = {}

    def join(self, digest: Digest) -> Fill:
        """The running fill for `digest`, starting one if there is none."""
        fill = self._running.get(digest)
        if fill is not None:
            metrics.fill_waiters.inc()
            return fill
        fill = Fill(digest, self._store, self._upstream, self._settings)
        self._running[digest] = fill
        fill.task = asyncio.create_task(self._run(fill), name=f"fill {digest}")
        return fill

    def running(self, digest: Digest) -> Fill | None:
        """The fill of `digest` in progress on this node, if any (nothing is started)."""
        return self._running.get(digest)

    async def _run(self, fill: Fill) -> None:
        try:
            await fill.run()
        finally:
            self._running.pop(fill.digest, None)

    async def close(self) -> None:
        tasks = [fill.task for fill in self._running.values() if fill.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
