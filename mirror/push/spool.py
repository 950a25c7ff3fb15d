"""Spooling one chunk of an upload into multipart parts, sent to the backend several at a time.

Each part is gathered in an anonymous temporary file (a part costs page cache, not memory) and handed to a
sending task; at most `parallel_parts` (``upload.parallel_parts``) parts of one chunk are on the wire at once, so
memory holds a few request chunks and disk holds at most parallel_parts + 1 parts. A spool whose part the backend
acknowledged gathers a later part of the same chunk: writing over pages already in the page cache costs less
than taking new ones (the kernel's copy into new page-cache pages was a third of a push's CPU in ``perf`` on this
project's VMs; ``load/floor.py`` measured 0.12-0.19 CPU-s/GiB for rewriting cached pages there against 0.34-3.1
for new ones, the latter moving with the VM's memory state). One connection to a far bucket
carries a fraction of the link (≈ 20 MB/s to Storj's gateway), so parts in parallel are what makes a push fast.
What is left at the end and too small to be a part (S3 wants ≥ 5 MiB for all but the last) is returned as the
chunk's remainder.

Spool files outlive the request that took them: an acknowledged part's file goes back to the process's
`SpoolPool` and gathers the next part, of the same request or a later one (see `SpoolPool` for what that saves).

Parts never stay in flight across the end of a request: a chunk counts only once the backend acknowledged each
of its parts (their ETags go into the session's state), so the next PATCH starts with an empty pipeline.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, BinaryIO, Callable

from mirror.config import MAX_PARTS
from mirror.upstream import BackendError, NotFound, Writer  # noqa: F401 (NotFound: see _send)
from mirror.domain import Oversized, Unavailable

MIN_PART = 5 * 1024 * 1024
# How long a failed request waits for its parts in flight to be answered before cancelling them (see `_settle`).
SETTLE_SECONDS = 60.0
# Received pieces are gathered up to this many bytes per write to the spool: a client such as docker sends its
# body in 32 KiB chunks, and a write call each would cost more than the copy of joining them.
WRITE_BATCH = 1024 * 1024


@dataclass
class Chunk:
    """What one request's body became: its parts ([number, ETag, size]) and the remainder."""

    received: int = 0
    parts: list[list[Any]] = field(default_factory=list)
    remainder: bytes = b""
    multipart_id: str | None = None


class SpoolPool:
    """The process's spool files: each taken by one part at a time, and kept between requests, up to `keep` idle.

    A part written into a new file costs the kernel a new page-cache page per 4 KiB besides the copy; written over
    a kept file whose pages are still cached, only the copy. With the defaults (64 MiB parts, 8 in flight) every
    part of a 512 MiB push took a new file, and its spool writes were a quarter of the edge's CPU for the push
    (py-spy, ``load`` full mode); see ``load/floor.py``'s ``write`` against ``rewrite``. Taken last-kept first:
    the most recently written pages are the likeliest to be cached still. Kept files are anonymous (unlinked at
    creation), so they hold disk only while the process runs, and at most one part's bytes each: a shorter part
    cuts its file at its end when it is sent (`PartSpooler._send`), and a remainder is read by its size.
    """

    def __init__(self, directory: Path, keep: int) -> None:
        self._directory = directory
        self._keep = keep
        self._idle: list[BinaryIO] = []
        self.created = 0  # files created over the pool's life

    @property
    def idle(self) -> int:
        """Files kept for the next part."""
        return len(self._idle)

    def take(self) -> BinaryIO:
        """A spool positioned at 0: a kept file (its old bytes are overwritten or lie beyond what is gathered in
        it), else a new anonymous file."""
        if self._idle:
            return self._idle.pop()
        self.created += 1
        return tempfile.TemporaryFile(dir=self._directory)

    def give_back(self, spool: BinaryIO) -> None:
        """Keep `spool` for a later part (rewound), or close it when `keep` files are already idle."""
        if len(self._idle) >= self._keep or spool.closed:
            spool.close()
            return
        spool.seek(0)
        self._idle.append(spool)


class PartSpooler:
    """Streams one request body into parts numbered from `first_number` of the multipart upload of `key`."""

    def __init__(
        self,
        writer: Writer,
        key: str,
        multipart_id: str | None,
        first_number: int,
        part_size: int,
        spools: SpoolPool,
        parallel_parts: int,
    ) -> None:
        self._writer = writer
        self._key = key
        self._part_size = part_size
        self._parallel_parts = parallel_parts
        self._spools = spools
        self._next_number = first_number
        self._sending: set[asyncio.Task[None]] = set()
        self._open: BinaryIO = spools.take()  # where the next bytes go (one `take` per spooler)
        self.chunk = Chunk(multipart_id=multipart_id)

    async def take(
        self,
        body: AsyncIterator[bytes],
        head: Callable[[], Awaitable[bytes]] | None,
        limit: int,
        too_large: Callable[[], Exception],
        on_bytes: Callable[[bytes | memoryview], None],
    ) -> Chunk:
        """Spool `body` (after `head()`, the previous remainder, fetched once the first byte arrives).

        At most `limit` new bytes are taken (else `too_large()` is raised); `on_bytes` sees every new byte (the
        running hash). Every part is acknowledged by the backend before this returns."""
        batch: list[bytes] = []
        batched = 0
        try:
            async for piece in body:
                if not piece:
                    continue
                if self.chunk.received == 0 and head is not None:
                    self._open.write(await head())
                self.chunk.received += len(piece)
                if self.chunk.received > limit:
                    raise too_large()
                on_bytes(piece)
                batch.append(piece)
                batched += len(piece)
                if batched >= WRITE_BATCH:
                    await self._write(batch)
                    batch, batched = [], 0
            await self._write(batch)
            if self.chunk.received and self._open.tell() >= MIN_PART:
                await self._send(self._open)
                self._open = self._spools.take()
            gathered = self._open.tell()  # a reused spool holds an older part's bytes beyond this
            self._open.seek(0)
            self.chunk.remainder = self._open.read(gathered) if self.chunk.received else b""
            await self._drain()
            self._spools.give_back(self._open)  # after the drain: a failed part closes it below, not in the pool
        except Exception:  # a hang-up, a stalled body, a failed part: let the parts in flight finish (`_settle`)
            self._open.close()
            await self._settle()
            raise
        except BaseException:
            self._open.close()
            await self._cancel()
            raise
        self.chunk.parts.sort()
        return self.chunk

    async def _write(self, batch: list[bytes]) -> None:
        """Write `batch` (one piece, or small pieces joined: one write call per WRITE_BATCH) to the open spool,
        handing each spool that fills up to a part to a sending task."""
        if not batch:
            return
        view = memoryview(batch[0] if len(batch) == 1 else b"".join(batch))
        while self._open.tell() + len(view) >= self._part_size:
            room = self._part_size - self._open.tell()
            self._open.write(view[:room])
            view = view[room:]
            await self._send(self._open)
            self._open = self._spools.take()
        self._open.write(view)

    @property
    def last_number(self) -> int:
        """The highest part number this chunk handed to the backend (first_number - 1 if none)."""
        return self._next_number - 1

    async def _send(self, spool: BinaryIO) -> None:
        """Hand a full spool to a sending task, after waiting for a free slot. The spool is cut at its part's end:
        a kept file held an older, longer part, whose bytes must never go out with this one (or lie in the file)."""
        spool.truncate()
        number = self._next_number
        if number > MAX_PARTS:
            spool.close()
            raise Oversized("upload", f"upload would need more than {MAX_PARTS} parts; send fewer, larger chunks")
        self._next_number += 1
        if self.chunk.multipart_id is None:
            try:
                self.chunk.multipart_id = await self._writer.start_multipart(self._key)
            except BackendError as error:
                spool.close()
                raise Unavailable.of(error) from error
            except NotFound:
                spool.close()
                raise
        while len(self._sending) >= self._parallel_parts:
            done, _ = await asyncio.wait(self._sending, return_when=asyncio.FIRST_COMPLETED)
            self._sending -= done
            for task in done:
                task.result()
        self._sending.add(asyncio.create_task(self._put_part(self.chunk.multipart_id, number, spool)))

    async def _put_part(self, multipart_id: str, number: int, spool: BinaryIO) -> None:
        try:
            size = spool.tell()
            spool.seek(0)
            etag = await self._writer.put_part(self._key, multipart_id, number, spool, size)
        except BackendError as error:  # NotFound passes: the multipart upload is gone, the caller asks why
            spool.close()
            raise Unavailable.of(error) from error
        except BaseException:
            spool.close()
            raise
        self.chunk.parts.append([number, etag, size])
        self._spools.give_back(spool)  # acknowledged: the backend has these bytes, the pages can take the next part

    async def _drain(self) -> None:
        sending, self._sending = self._sending, set()
        for outcome in await asyncio.gather(*sending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _settle(self) -> None:
        """Wait for the parts in flight to be answered (at most SETTLE_SECONDS), then cancel what is left.

        Not cancelled at once: a cancelled PUT whose body the bucket already has may still land after a resumed
        chunk's part of the same number and replace it; once every answer is in, none can."""
        sending, self._sending = self._sending, set()
        if sending:
            _, late = await asyncio.wait(sending, timeout=SETTLE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)

    async def _cancel(self) -> None:
        sending, self._sending = self._sending, set()
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
