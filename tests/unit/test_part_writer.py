"""PartWriter batching: a part's first bytes reach the file after a small batch, later ones in bigger batches."""

import asyncio
import os

from mirror.cache.partial import FIRST_BATCH, WRITE_BATCH, PartWriter, open_sparse
from mirror.cache.parts import Part

CHUNK = 64 * 1024


def _write_in_chunks(tmp_path, total: int) -> list[int]:
    """Feed `total` bytes of a part of 8 MiB in 64 KiB chunks; the `written` sizes seen after each batch."""
    size = 8 * 1024 * 1024
    fd = open_sparse(tmp_path / "partial", size)
    part = Part(0, size, started=True)
    seen: list[int] = []

    async def run() -> None:
        writer = PartWriter(fd, part, lambda f, *a: asyncio.ensure_future(asyncio.to_thread(f, *a)), lambda: seen.append(part.written))
        for _ in range(total // CHUNK):
            part.fetched += CHUNK
            await writer.add(b"x" * CHUNK)
            await asyncio.sleep(0.01)  # let each batch land before the next chunk, as a 20 MB/s stream does
        await writer.flush()

    try:
        asyncio.run(run())
    finally:
        os.close(fd)
    return seen


def test_first_batch_of_a_part_is_small(tmp_path):
    assert _write_in_chunks(tmp_path, FIRST_BATCH)[0] == FIRST_BATCH


def test_batches_grow_to_write_batch(tmp_path):
    seen = _write_in_chunks(tmp_path, 3 * FIRST_BATCH + 4 * WRITE_BATCH)
    steps = [after - before for before, after in zip([0, *seen], seen)]
    assert steps[:3] == [FIRST_BATCH, 2 * FIRST_BATCH, WRITE_BATCH] and set(steps[3:]) == {WRITE_BATCH}, steps
