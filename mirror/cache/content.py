"""Readers that stream a blob's bytes to a response: from a cached file or from a fill in progress.

Each offers its bytes two ways: `chunks` (bytes read into Python) and, where the bytes are in a local file,
`spans` (``(position, end)`` ranges that are in `file()` now, for the kernel to send with ``sendfile``: a herd
of clients following one fill costs the event loop a call per range, not a copy per byte). Both take
`client_gone`, a future that completes when the client hangs up: a reader that would have to wait (for a
fill's next bytes) stops waiting and ends early instead, so a dead connection holds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import AsyncIterator, BinaryIO

from mirror.cache.fill import READ_CHUNK, Fill
from mirror.cache.store import CachedFile


class CachedBlob:
    """A verified file from the store. Reads are ≥ 1 MiB preads on the event loop: the file is local and
    usually in the page cache, and a thread hop per chunk would cost more than the read."""

    source = "cache"
    zero_copy = True

    def __init__(self, cached: CachedFile) -> None:
        self._cached = cached
        self.size = cached.size

    async def chunks(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[bytes]:
        """Never waits, so `client_gone` is the caller's to check between chunks."""
        position = start
        fd = self._cached.fd
        while position < end:
            chunk = os.pread(fd, min(READ_CHUNK, end - position), position)
            if not chunk:
                raise OSError(f"cached file ended at {position} of {end}")
            position += len(chunk)
            yield chunk

    async def spans(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[tuple[int, int]]:
        """The whole range is in the file already."""
        yield start, end

    def file(self) -> BinaryIO:
        """The cached file as a file object for ``sendfile`` (it shares this reader's descriptor)."""
        return open(self._cached.fd, "rb", buffering=0, closefd=False)

    def close(self) -> None:
        self._cached.close()


class FillingBlob:
    """A blob still being filled: bytes are streamed as they land, and the transfer fails if the fill does."""

    source = "fill"

    def __init__(self, fill: Fill, fd: int, size: int) -> None:
        self._fill = fill
        self._fd = fd
        self.size = size
        self.zero_copy = fd >= 0  # -1: no local file, the bytes come straight from the backend

    async def chunks(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[bytes]:
        fd, self._fd = self._fd, -1  # from here on the stream owns (and closes) the descriptor
        async with contextlib.aclosing(self._fill.stream(fd, start, end, client_gone)) as stream:
            async for chunk in stream:
                yield chunk

    def spans(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[tuple[int, int]]:
        """Ranges of the partial file as the fill writes them (the last byte of a whole read once verified)."""
        return self._fill.spans(start, end, client_gone)

    def file(self) -> BinaryIO:
        """The partial file as a file object for ``sendfile`` (it shares this reader's descriptor, which stays
        valid when the fill commits the file under its final name)."""
        return open(self._fd, "rb", buffering=0, closefd=False)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


BlobReader = CachedBlob | FillingBlob
