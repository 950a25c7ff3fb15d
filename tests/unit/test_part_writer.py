"""PartWriter batching: a part's first bytes reach the file after a small batch, later ones in bigger batches."""

import asyncio
import os
import threading

from mirror.cache.partialfile import FIRST_BATCH, WRITE_BATCH, PartWriter, open_sparse, write_all
from mirror.cache.fillplan import Part

CHUNK = 64 * 1024


def _write_in_chunks(tmp_path, total: int) -> list[int]:
    """Feed `total` bytes of a part of 8 MiB in 64 KiB chunks; the `written` sizes seen after each batch."""
    size = 8 * 1024 * 1024
    fd = open_sparse(tmp_path / "partial", size)
    part = Part(0, size, started=True)
    seen: list[int] = []

    async def run() -> None:
        writes: list[asyncio.Future[object]] = []

        def in_thread(function, *args):  # type: ignore[no-untyped-def]
            writes.append(asyncio.ensure_future(asyncio.to_thread(function, *args)))
            return writes[-1]

        writer = PartWriter(fd, part, in_thread, lambda: seen.append(part.written), asyncio.Lock())
        for _ in range(total // CHUNK):
            part.fetched += CHUNK
            await writer.add(b"x" * CHUNK)
            await asyncio.wait_for(_noted(writes, seen), 10)  # each batch lands before the next chunk, as on a 20 MB/s stream
        await writer.flush()

    try:
        asyncio.run(run())
    finally:
        os.close(fd)
    return seen


async def _noted(writes: list["asyncio.Future[object]"], seen: list[int]) -> None:
    """Until every write started so far is in the file and the writer has reported it (however slow the disk)."""
    while len(seen) < len(writes):
        await asyncio.sleep(0.001)


def test_first_batch_of_a_part_is_small(tmp_path):
    assert _write_in_chunks(tmp_path, FIRST_BATCH)[0] == FIRST_BATCH


def test_batches_grow_to_write_batch(tmp_path):
    seen = _write_in_chunks(tmp_path, 3 * FIRST_BATCH + 4 * WRITE_BATCH)
    steps = [after - before for before, after in zip([0, *seen], seen)]
    assert steps[:3] == [FIRST_BATCH, 2 * FIRST_BATCH, WRITE_BATCH] and set(steps[3:]) == {WRITE_BATCH}, steps


def test_the_parts_of_one_file_write_into_it_one_at_a_time_and_the_waiting_part_writes_all_it_gathered(tmp_path):
    fd = open_sparse(tmp_path / "partial", 2 * WRITE_BATCH)
    parts = [Part(0, WRITE_BATCH, started=True), Part(WRITE_BATCH, 2 * WRITE_BATCH, started=True)]
    go = threading.Event()
    calls: list[tuple[int, int]] = []  # (offset, bytes) of each write handed to a thread

    def held_write(fd: int, buffers: list[bytes], offset: int) -> None:
        if not go.wait(10):
            raise TimeoutError("the test never let the writes go")
        write_all(fd, buffers, offset)

    async def run() -> None:
        def in_thread(function, fd, buffers, offset):  # type: ignore[no-untyped-def]
            calls.append((offset, sum(len(buffer) for buffer in buffers)))
            return asyncio.ensure_future(asyncio.to_thread(held_write, fd, buffers, offset))

        lock = asyncio.Lock()
        writers = [PartWriter(fd, part, in_thread, lambda: None, lock) for part in parts]

        async def add(index: int, length: int) -> None:
            parts[index].fetched += length
            await writers[index].add(b"ab"[index : index + 1] * length)

        await add(0, FIRST_BATCH)
        await add(1, FIRST_BATCH)  # a first batch each: both want to write now
        for _ in range(5):
            await asyncio.sleep(0)  # let both writes reach their thread, were they allowed to
        assert calls == [(0, FIRST_BATCH)]  # the second part waits for the first one's write
        await add(1, FIRST_BATCH)  # and keeps gathering meanwhile
        go.set()
        await add(0, WRITE_BATCH - FIRST_BATCH)
        await add(1, WRITE_BATCH - 2 * FIRST_BATCH)
        for writer in writers:
            await writer.flush()
        first_of_second = next(length for offset, length in calls if offset == WRITE_BATCH)
        assert first_of_second >= 2 * FIRST_BATCH  # what it gathered while waiting went in one write

    try:
        asyncio.run(run())
        assert os.pread(fd, 2 * WRITE_BATCH, 0) == b"a" * WRITE_BATCH + b"b" * WRITE_BATCH
    finally:
        os.close(fd)
