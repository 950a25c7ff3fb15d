"""`FilePart`: a spooled part as aiohttp streams it to S3 — from the file's position, in pieces of at most 1 MiB,
the same bytes again when a retry iterates it anew."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from mirror.upstream.partbody import PIECE, FilePart

MIB = 1024 * 1024


async def _pieces(part: FilePart) -> list[bytes]:
    return [piece async for piece in part]


def test_file_part_streams_its_range_in_pieces_of_at_most_a_mib_and_again_on_a_retry(tmp_path: Path):
    data = random.Random(3).randbytes(3 * MIB + 17)
    with open(tmp_path / "spool", "w+b") as spool:
        spool.write(b"head" + data + b"tail")
        spool.seek(4)
        part = FilePart(spool, len(data))
        first = asyncio.run(_pieces(part))
        again = asyncio.run(_pieces(part))
    assert b"".join(first) == data
    assert again == first
    assert max(len(piece) for piece in first) == PIECE


def test_file_part_read_follows_seek_within_its_range(tmp_path: Path):
    with open(tmp_path / "spool", "w+b") as spool:
        spool.write(b"xxabcdefyy")
        spool.seek(2)
        part = FilePart(spool, 6)
        assert part.read(4) == b"abcd"
        assert part.read() == b"ef"
        part.seek(0)
        assert part.read() == b"abcdef"
        assert len(part) == 6
