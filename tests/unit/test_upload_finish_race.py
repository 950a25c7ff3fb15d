"""Requests racing a finish on one upload session (a client's retry, a load balancer's): a second finish that finds
the multipart upload already gone waits for the first one's assembly instead of answering a 503, and a late chunk
never takes the session away from the finish that is completing it."""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import AsyncIterator

from mirror import layout
from mirror.api.failures import registry_error
from mirror.config import load
from mirror.domain import Problem
from mirror.push.uploads import Uploads
from mirror.reference import Digest, parse_digest
from mirror.upstream import NotFound
from mirror.upstream.filesystem import FilesystemUpstream

MIB = 1024 * 1024


class HeldAssembly(FilesystemUpstream):
    """Completing a multipart upload hides it at once (as a completion in progress does) and assembles it only when
    the test releases it; `assembling` tells that a completion has begun, `refused` that a request found the
    upload hidden by it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.completing: set[str] = set()
        self.assembling = asyncio.Event()
        self.refused = asyncio.Event()
        self.release = asyncio.Event()

    def _hidden(self, key: str, upload_id: str) -> None:
        if upload_id in self.completing:
            self.refused.set()
            raise NotFound(f"{key}: no multipart upload {upload_id}")

    async def list_parts(self, key: str, upload_id: str) -> dict[int, str]:
        self._hidden(key, upload_id)
        return await super().list_parts(key, upload_id)

    async def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self._hidden(key, upload_id)
        self.completing.add(upload_id)
        self.assembling.set()
        await self.release.wait()
        await super().complete_multipart(key, upload_id, parts)


class Links:
    """The one question push asks the read side, answered from what push told it."""

    def __init__(self) -> None:
        self.held: set[tuple[str, Digest]] = set()

    async def is_linked(self, name: str, kind: str, digest: Digest) -> bool:
        return (name, digest) in self.held

    def linked(self, name: str, kind: str, digest: Digest) -> None:
        self.held.add((name, digest))


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MIB):
        yield data[start : start + MIB]


def test_a_finish_racing_a_slow_assembly_waits_for_it_and_both_succeed(tmp_path: Path) -> None:
    settings = load(None, environ={"MIRROR_UPLOAD_PART_SIZE": "5MiB"}).upload
    data = random.Random(5).randbytes(6 * MIB + 7)
    digest = parse_digest("sha256:" + hashlib.sha256(data).hexdigest())
    backend = HeldAssembly(tmp_path / "bucket")
    links = Links()

    async def scenario() -> list[object]:
        await backend.start()
        uploads = Uploads(backend, links, settings, tmp_path / "spool")  # type: ignore[arg-type]
        state = await uploads.start("race/app")
        await uploads.append("race/app", state.id, _body(data))
        first = asyncio.create_task(uploads.finish("race/app", state.id, digest, _empty()))
        await asyncio.wait_for(backend.assembling.wait(), 10)  # the first one is assembling
        second = asyncio.create_task(uploads.finish("race/app", state.id, digest, _empty()))
        await asyncio.wait_for(backend.refused.wait(), 10)  # the second found the multipart upload gone
        backend.release.set()
        return await asyncio.gather(first, second, return_exceptions=True)

    assert asyncio.run(scenario()) == [None, None]
    assert ("race/app", digest) in links.held
    blob = tmp_path / "bucket" / "docker/registry/v2/blobs/sha256" / digest.hex[:2] / digest.hex / "data"
    assert blob.read_bytes() == data


def test_a_chunk_racing_a_finish_that_is_completing_the_multipart_upload_leaves_the_session_to_it(tmp_path: Path) -> None:
    settings = load(None, environ={"MIRROR_UPLOAD_PART_SIZE": "5MiB"}).upload
    data = random.Random(6).randbytes(6 * MIB + 7)
    digest = parse_digest("sha256:" + hashlib.sha256(data).hexdigest())
    backend = FilesystemUpstream(tmp_path / "bucket")
    links = Links()

    async def scenario() -> tuple[str, int]:
        await backend.start()
        uploads = Uploads(backend, links, settings, tmp_path / "spool")  # type: ignore[arg-type]
        state = await uploads.start("race/app")
        state = await uploads.append("race/app", state.id, _body(data))
        staged = layout.upload_data("race/app", state.id)
        tail = data[5 * MIB :]
        assert state.multipart_id is not None and len(state.parts) == 1
        # A finish elsewhere has completed the multipart upload and not yet recorded that in the state.
        tail_etag = await backend.put_part(staged, state.multipart_id, 2, tail, len(tail))
        await backend.complete_multipart(staged, state.multipart_id, [(1, state.parts[0][1]), (2, tail_etag)])
        try:
            await uploads.append("race/app", state.id, _body(b"late" * MIB))
        except Problem as error:
            answer = registry_error(error).code.code
        kept = await uploads.status("race/app", state.id)
        await uploads.finish("race/app", state.id, digest, _empty())
        return answer, kept.offset

    assert asyncio.run(scenario()) == ("UNAVAILABLE", len(data))
    assert ("race/app", digest) in links.held
