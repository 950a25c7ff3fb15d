"""PartWriter batching: a part's first bytes reach the file after a small batch, later ones in bigger batches."""

import asyncio
import os

from mirror.cache.partialfile import FIRST_BATCH, WRITE_BATCH, PartWriter, open_sparse
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

        writer = PartWriter(fd, part, in_thread, lambda: seen.append(part.written))
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
