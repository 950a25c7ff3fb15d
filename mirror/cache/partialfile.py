"""Writing a fill's bytes into its partial file without blocking the event loop.

A partial file is sparse (``ftruncate``), never preallocated: writes into preallocated, unwritten extents cost
about nine times more on ext4 here (381 MiB/s against 3.2 GiB/s, see MEASUREMENTS.md), which is what made the
event loop spend half its time in ``pwrite``. Writes still go to a worker thread — a big fill can hit the
kernel's dirty-page throttling, which must never stall the event loop — but in batches (or the end of a part), so
a thread hop is paid per MiB, not per network chunk (chunks of a 20 MB/s stream are small). A part's first batch is
`FIRST_BATCH` (its first bytes reach a waiting client one small batch after they arrive: 13 ms at 20 MB/s), and
each next batch is twice the last, up to `WRITE_BATCH`. Readers are woken after each batch is in the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import os
from typing import Any, Callable

from mirror.cache.fillplan import Part

FIRST_BATCH = 256 * 1024
WRITE_BATCH = 1024 * 1024
MAX_PENDING_WRITE = WRITE_BATCH  # a part stops reading the backend while this much more waits for the disk

InThread = Callable[..., "asyncio.Future[Any]"]


def open_sparse(path: os.PathLike[str] | str, size: int) -> int:
    """Create the partial file for a blob of `size` bytes; returns its descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


class PartWriter:
    """Writes one part's bytes at their offsets through `in_thread` in batches; `written` is called after each.

    The parts of one file write one at a time (`file_lock`, shared by the file's writers): buffered writes to one
    file serialise on its inode lock in the kernel anyway, and worker threads waiting there spin on it, burning
    CPU while the owner copies (perf of a cold fill: 15 % of the edge in ``rwsem_spin_on_owner``). A part whose
    turn has not come keeps gathering its chunks, so the next write is a bigger batch."""

    def __init__(self, fd: int, part: Part, in_thread: InThread, written: Callable[[], None], file_lock: asyncio.Lock) -> None:
        self._fd = fd
        self._file_lock = file_lock
        self._part = part
        self._in_thread = in_thread
        self._written = written
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._batch = FIRST_BATCH
        self._task: asyncio.Future[None] | None = None

    async def add(self, chunk: bytes) -> None:
        """Queue `chunk` (the part's next bytes); a batch goes to the disk once big enough or at the part's end."""
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        part = self._part
        if self._pending_bytes < self._batch and part.start + part.fetched < part.end:
            return
        if self._task is None or self._task.done():
            if self._task is not None:
                self._task.result()  # a failed write fails the part
            self._task = asyncio.ensure_future(self._drain())
            self._batch = min(WRITE_BATCH, 2 * self._batch)
        elif self._pending_bytes >= MAX_PENDING_WRITE:
            await asyncio.shield(self._task)

    async def flush(self) -> None:
        """Write whatever is queued and wait until it is in the file."""
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._pending:
            await self._drain()

    async def _drain(self) -> None:
        part = self._part
        while self._pending:
            async with self._file_lock:
                buffers, self._pending, self._pending_bytes = self._pending, [], 0
                await self._in_thread(write_all, self._fd, buffers, part.start + part.written)
            part.written += sum(len(buffer) for buffer in buffers)
            self._written()


def write_all(fd: int, buffers: list[bytes], offset: int) -> None:
    views = [memoryview(buffer) for buffer in buffers]
    while views:
        written = os.pwritev(fd, views, offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def hash_range(hasher: "hashlib._Hash", fd: int, offset: int, length: int) -> None:
    """Hash `length` bytes of the file from `offset` (a multiple of the page size) straight from the page cache.

    The window is mapped, hashed and unmapped: no copy into a buffer of ours (``pread`` cost ~0.35 CPU-s per GiB
    here, about half of what the hash itself costs), and the file's pages never stay mapped, so the fill does
    not add the blob to the process's RSS."""
    try:
        window = mmap.mmap(fd, length, prot=mmap.PROT_READ, offset=offset)
    except ValueError as error:  # the file is shorter than the range (mmap checks the size)
        raise OSError(f"partial file ended before {offset + length}: {error}") from error
    with window, memoryview(window) as view:
        hasher.update(view)
