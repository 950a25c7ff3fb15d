"""The parts of one chunk go to the backend in parallel, at most `IN_FLIGHT` at once, spooled to files, and
assemble to exactly the bytes sent (a real filesystem backend, its put_part timed by a thin wrapper)."""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from mirror import errors
from mirror.push.parts import IN_FLIGHT, PartSpooler
from mirror.upstream.filesystem import FilesystemUpstream

MIB = 1024 * 1024


class CountingUpstream(FilesystemUpstream):
    """The filesystem backend, made slow per part and counting how many parts are on their way at once."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.in_flight = 0
        self.most_in_flight = 0

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.05)
            return await super().put_part(key, upload_id, number, body, size)
        finally:
            self.in_flight -= 1


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MIB):
        yield data[start : start + MIB]


def _too_large() -> Exception:
    return errors.RegistryError(errors.DENIED, "too large", status=413)


def test_parts_of_one_chunk_are_sent_in_parallel_bounded_and_assemble_to_the_bytes_sent(tmp_path: Path):
    data = random.Random(3).randbytes(6 * 5 * MIB + 123)
    spool = tmp_path / "spool"
    spool.mkdir()

    async def scenario() -> bytes:
        upstream = CountingUpstream(tmp_path / "root")
        await upstream.start()
        spooler = PartSpooler(upstream, "docker/registry/v2/x/data", None, 1, 5 * MIB, spool)
        chunk = await spooler.take(_body(data), None, 1 << 40, _too_large, lambda _: None)
        assert [number for number, _, _ in chunk.parts] == list(range(1, 7))
        assert chunk.remainder == data[-123:]
        assert upstream.most_in_flight == IN_FLIGHT
        assert chunk.multipart_id is not None
        await upstream.complete_multipart("docker/registry/v2/x/data", chunk.multipart_id, [(n, e) for n, e, _ in chunk.parts])
        return (tmp_path / "root/docker/registry/v2/x/data").read_bytes()

    assembled = asyncio.run(scenario())
    assert hashlib.sha256(assembled).digest() == hashlib.sha256(data[:-123]).digest()
    assert list(spool.iterdir()) == []  # every spool file is gone
