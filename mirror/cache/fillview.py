"""What the readers of a fill see: its size, its part table, its failure, and the waiting for bytes to land.

`Fill` (`fill.py`) builds on this: `FillView` holds the state every request for the digest reads, and the waits
(`spans`) that tell the fill's scheduler which byte a client needs next (`_wants`, `_changed`); the part fetching
(`fillfetch.py`) and the fill's run (`fill.py`) write that state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from typing import Any, AsyncGenerator

from mirror import layout
from mirror.cache.direct import FillFailed, stream_direct
from mirror.cache.fillplan import ConnectionBudget, PartTable
from mirror.reference import Digest
from mirror.upstream import Upstream

READ_CHUNK = 1024 * 1024


class FillView:
    """The state of one digest being copied into a partial file, as its readers see it."""

    def __init__(
        self, digest: Digest, upstream: Upstream, budget: ConnectionBudget, min_part_size: int, repository: str
    ) -> None:
        self.digest = digest
        self._upstream = upstream
        self._budget = budget
        self._key = layout.blob_data(digest, repository)
        self._fd = -1
        self.size: int | None = None
        self.parts = PartTable([], min_part_size)
        self.error: BaseException | None = None
        self.verified = False
        self.direct = False  # no room on the local disk: readers stream from the backend themselves
        self._wants: Counter[int] = Counter()  # positions clients wait at: the scheduler fetches these first
        self._sized: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._progress = asyncio.Event()
        self._changed = asyncio.Event()

    async def wait_size(self) -> int:
        """The blob's size, once the backend has told it (raises NotFound/BackendError from the first GET)."""
        return await asyncio.shield(self._sized)

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
    ) -> AsyncGenerator[tuple[int, int], None]:
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
    ) -> AsyncGenerator[bytes, None]:
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
            either: set[asyncio.Future[Any]] = {progress, client_gone}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                progress.cancel()
            return not client_gone.done()
        finally:
            self._wants[position] -= 1
            if self._wants[position] <= 0:
                del self._wants[position]

    def _notify(self) -> None:
        """New bytes (or the end): wake every reader waiting in `spans`."""
        self._progress.set()
        self._progress = asyncio.Event()
