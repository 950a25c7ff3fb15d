"""The parts of one chunk go to the backend in parallel, at most `upload.parallel_parts` at once, spooled to at
most parallel_parts + 1 temporary files that later parts and later requests write over, and assemble to exactly
the bytes sent (a real filesystem backend, its put_part slowed and watched by a thin wrapper)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from pathlib import Path
from typing import AsyncIterator, BinaryIO

import pytest

from mirror import errors
from mirror.config import load
from mirror.push.spool import PartSpooler, SpoolPool
from mirror.push.uploads import Uploads
from mirror.upstream.filesystem import FilesystemUpstream

MIB = 1024 * 1024
KEY = "docker/registry/v2/x/data"


def _open_spools(directory: Path) -> int:
    """Files of `directory` this process holds open (the spools are anonymous: only their descriptors show them)."""
    held = 0
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue
        held += target.startswith(f"{directory}/")
    return held


class CountingUpstream(FilesystemUpstream):
    """The filesystem backend, made slow per part, counting parts on their way and spool files open at once."""

    def __init__(self, root: Path, spool: Path) -> None:
        super().__init__(root)
        self.spool = spool
        self.in_flight = 0
        self.most_in_flight = 0
        self.most_spools = 0

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.05)
            self.most_spools = max(self.most_spools, _open_spools(self.spool))
            return await super().put_part(key, upload_id, number, body, size)
        finally:
            self.in_flight -= 1


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MIB):
        yield data[start : start + MIB]


def _too_large() -> Exception:
    return errors.RegistryError(errors.DENIED, "too large", status=413)


@pytest.mark.parametrize("parallel_parts", [1, 3])
def test_parts_of_one_chunk_go_out_parallel_parts_at_a_time_and_assemble_to_the_bytes_sent(tmp_path: Path, parallel_parts: int):
    data = random.Random(3).randbytes(7 * 5 * MIB + 123)
    spool = tmp_path / "spool"
    spool.mkdir()
    pool = SpoolPool(spool, keep=parallel_parts + 1)

    async def scenario() -> tuple[CountingUpstream, bytes]:
        upstream = CountingUpstream(tmp_path / "root", spool)
        await upstream.start()
        spooler = PartSpooler(upstream, KEY, None, 1, 5 * MIB, pool, parallel_parts)
        chunk = await spooler.take(_body(data), None, 1 << 40, _too_large, lambda _: None)
        assert [number for number, _, _ in chunk.parts] == list(range(1, 8))
        assert chunk.remainder == data[-123:]
        assert chunk.multipart_id is not None
        await upstream.complete_multipart(KEY, chunk.multipart_id, [(n, e) for n, e, _ in chunk.parts])
        return upstream, (tmp_path / "root" / KEY).read_bytes()

    upstream, assembled = asyncio.run(scenario())
    assert upstream.most_in_flight == parallel_parts
    assert upstream.most_spools <= parallel_parts + 1  # the parts on their way and the one waiting for a slot
    assert hashlib.sha256(assembled).digest() == hashlib.sha256(data[:-123]).digest()
    assert _open_spools(spool) == pool.idle  # every spool file is closed or kept for the next part


def test_an_upload_sends_as_many_parts_at_once_as_upload_parallel_parts_says(tmp_path: Path):
    settings = load(None, environ={"MIRROR_UPLOAD_PARALLEL_PARTS": "2", "MIRROR_UPLOAD_PART_SIZE": "5MiB"}).upload
    data = random.Random(4).randbytes(6 * 5 * MIB)

    async def scenario() -> tuple[CountingUpstream, int]:
        upstream = CountingUpstream(tmp_path / "root", tmp_path / "spool")
        await upstream.start()
        uploads = Uploads(upstream, None, settings, tmp_path / "spool")  # type: ignore[arg-type]  # appending never asks the cache
        state = await uploads.start("x")
        state = await uploads.append("x", state.id, _body(data))
        return upstream, state.offset

    upstream, offset = asyncio.run(scenario())
    assert offset == len(data)
    assert upstream.most_in_flight == 2


class HeldUpstream(FilesystemUpstream):
    """The filesystem backend whose part uploads wait for `release`, recording each one's end (answered or
    cancelled): a part the bucket already has is stored whether or not its sender still waits for the answer."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.ends: list[str] = []

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        self.started.set()
        try:
            await self.release.wait()
            etag = await super().put_part(key, upload_id, number, body, size)
        except asyncio.CancelledError:
            self.ends.append("cancelled")
            raise
        self.ends.append("answered")
        return etag


class ClientGone(Exception):
    """What the web framework raises when the client hangs up mid-body."""


def test_a_chunk_whose_client_hangs_up_waits_for_its_parts_in_flight_to_be_answered(tmp_path: Path):
    """A resumed chunk reuses the abandoned chunk's part numbers: a part of the abandoned chunk still in flight
    could land after the resumed one and replace it (the finish then refuses the digest). So the failed request
    ends only once every part it sent has been answered."""
    spool = tmp_path / "spool"
    spool.mkdir()

    async def scenario() -> HeldUpstream:
        upstream = HeldUpstream(tmp_path / "root")
        await upstream.start()

        async def hanging_up() -> AsyncIterator[bytes]:
            yield os.urandom(5 * MIB)
            yield b"x"  # the first part is full and handed to its sender
            await upstream.started.wait()
            asyncio.get_running_loop().call_soon(upstream.release.set)
            raise ClientGone()

        spooler = PartSpooler(upstream, KEY, None, 1, 5 * MIB, SpoolPool(spool, keep=5), 4)
        with pytest.raises(ClientGone):
            await spooler.take(hanging_up(), None, 1 << 40, _too_large, lambda _: None)
        return upstream

    upstream = asyncio.run(scenario())
    assert upstream.ends == ["answered"]


class CountedWrites:
    """A spool file whose write calls are recorded in `writes` (their sizes)."""

    def __init__(self, file: BinaryIO, writes: list[int]) -> None:
        self._file = file
        self._writes = writes

    def write(self, data: bytes | memoryview) -> int:
        self._writes.append(len(data))
        return self._file.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)


def test_a_body_in_small_pieces_reaches_the_spool_in_writes_of_about_a_mib(tmp_path: Path):
    """docker sends a layer in 32 KiB chunks: the spool gets them gathered (a write call per piece cost more CPU
    than the copy of joining them), and the parts and remainder are still exactly the bytes sent."""
    data = random.Random(5).randbytes(3 * 5 * MIB + 7)
    writes: list[int] = []
    spool = tmp_path / "spool"
    spool.mkdir()

    class CountingPool(SpoolPool):
        def take(self) -> BinaryIO:
            spool = super().take()  # a reused spool is already counted
            return spool if isinstance(spool, CountedWrites) else CountedWrites(spool, writes)  # type: ignore[return-value]

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 32 * 1024):
            yield data[start : start + 32 * 1024]

    async def scenario() -> tuple[int, bytes]:
        upstream = FilesystemUpstream(tmp_path / "root")
        await upstream.start()
        spooler = PartSpooler(upstream, KEY, None, 1, 5 * MIB, CountingPool(spool, keep=3), 2)
        chunk = await spooler.take(pieces(), None, 1 << 40, _too_large, lambda _: None)
        assert chunk.multipart_id is not None
        await upstream.complete_multipart(KEY, chunk.multipart_id, [(n, e) for n, e, _ in chunk.parts])
        return len(chunk.parts), (tmp_path / "root" / KEY).read_bytes() + chunk.remainder

    parts, assembled = asyncio.run(scenario())
    assert parts == 3
    assert hashlib.sha256(assembled).digest() == hashlib.sha256(data).digest()
    assert len(writes) <= len(data) // MIB + 2 * parts + 2  # a write per MiB, a part's end splitting one


async def _spooled(root: Path, pool: SpoolPool, data: bytes, parallel_parts: int, part_size: int = 5 * MIB) -> bytes:
    """`data` taken as one request's body into the filesystem backend at `root`: the bytes the backend assembled,
    followed by the chunk's remainder."""
    upstream = FilesystemUpstream(root)
    await upstream.start()
    chunk = await PartSpooler(upstream, KEY, None, 1, part_size, pool, parallel_parts).take(
        _body(data), None, 1 << 40, _too_large, lambda _: None)
    assert chunk.multipart_id is not None
    await upstream.complete_multipart(KEY, chunk.multipart_id, [(n, e) for n, e, _ in chunk.parts])
    return (root / KEY).read_bytes() + chunk.remainder


def test_a_spool_whose_part_was_acknowledged_gathers_a_later_part(tmp_path: Path):
    """Seven parts sent one at a time take two spool files, not eight: writing over page-cache pages the backend
    already has is cheaper than taking new ones. The bytes still assemble exactly (a reused spool is longer than
    the remainder gathered in it last)."""
    data = random.Random(7).randbytes(7 * 5 * MIB + 99)
    spool = tmp_path / "spool"
    spool.mkdir()
    pool = SpoolPool(spool, keep=2)

    assembled = asyncio.run(_spooled(tmp_path / "root", pool, data, parallel_parts=1))
    assert pool.created == 2  # the part on its way and the one filling meanwhile
    assert hashlib.sha256(assembled).digest() == hashlib.sha256(data).digest()


def test_a_later_request_writes_its_parts_over_the_spools_an_earlier_request_left(tmp_path: Path):
    """The spools outlive their request: a second push of three parts in flight creates no file, and its bytes
    still assemble exactly, its last part (shorter than a whole part) included: the kept file it was spooled to
    holds an older part's bytes after it."""
    first, second = random.Random(8).randbytes(6 * 6 * MIB), random.Random(9).randbytes(3 * 6 * MIB + 5 * MIB + 5)
    spool = tmp_path / "spool"
    spool.mkdir()
    pool = SpoolPool(spool, keep=4)

    asyncio.run(_spooled(tmp_path / "first", pool, first, parallel_parts=3, part_size=6 * MIB))
    created = pool.created
    assembled = asyncio.run(_spooled(tmp_path / "second", pool, second, parallel_parts=3, part_size=6 * MIB))
    assert created >= 2
    assert pool.created == created
    assert hashlib.sha256(assembled).digest() == hashlib.sha256(second).digest()


def test_the_spools_kept_between_requests_are_at_most_the_pools_keep(tmp_path: Path):
    """Disk held while no push runs is bounded: a request with three parts in flight used four spools; the pool
    keeps one of them open and closes the others."""
    spool = tmp_path / "spool"
    spool.mkdir()
    pool = SpoolPool(spool, keep=1)

    asyncio.run(_spooled(tmp_path / "root", pool, random.Random(10).randbytes(6 * 5 * MIB), parallel_parts=3))
    assert pool.created > 1
    assert pool.idle == 1
    assert _open_spools(spool) == 1


class FileSizes(FilesystemUpstream):
    """The filesystem backend, recording for each part the size of the spool file it is sent from, and its own."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.sizes: list[tuple[int, int]] = []

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        assert not isinstance(body, bytes)
        self.sizes.append((os.fstat(body.fileno()).st_size, size))
        return await super().put_part(key, upload_id, number, body, size)


def test_a_part_goes_out_in_a_spool_file_that_holds_exactly_its_bytes(tmp_path: Path):
    """A short last part spooled over a kept, longer part cuts the file at its end: no older bytes go out with it
    to a backend that reads to the end, or stay lying in the file."""
    spool = tmp_path / "spool"
    spool.mkdir()
    pool = SpoolPool(spool, keep=2)

    async def push(root: Path, data: bytes) -> list[tuple[int, int]]:
        upstream = FileSizes(root)
        await upstream.start()
        await PartSpooler(upstream, KEY, None, 1, 6 * MIB, pool, 1).take(_body(data), None, 1 << 40, _too_large,
                                                                           lambda _: None)
        return upstream.sizes

    asyncio.run(push(tmp_path / "first", random.Random(11).randbytes(2 * 6 * MIB)))
    sizes = asyncio.run(push(tmp_path / "second", random.Random(12).randbytes(6 * MIB + 5 * MIB + 5)))
    assert sizes == [(6 * MIB, 6 * MIB), (5 * MIB + 5, 5 * MIB + 5)]

