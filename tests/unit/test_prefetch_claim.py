"""A client's blob GET that arrives while the prefetch of that blob still waits for its link check (a client asks
for its first layers right after the manifest) starts the prefetch's fill at once, planned from the manifest's
size, and joins it: no fill of its own that first spends a round trip learning the size. The client's own link
check still decides: a blob its repository does not link is stopped and never committed.

In-process, on a real filesystem backend; the backend's link reads are held until the test lets them go, so the
GET surely arrives while the prefetch's check waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path

import orjson
import pytest

from mirror import config, layout
from mirror.cache.edge import EdgeCache
from mirror.domain import Unknown
from mirror.reference import Digest, parse_digest
from mirror.upstream.filesystem import FilesystemUpstream

MIB = 1024 * 1024
REPOSITORY = "team/app"


class HeldLinks(FilesystemUpstream):
    """A filesystem backend whose link reads wait until the test opens `gate`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = asyncio.Event()

    async def read(self, key: str, max_size: int) -> bytes:
        if key.endswith("/link"):
            await self.gate.wait()
        return await super().read(key, max_size)


def _store(root: Path, blob: bytes, linked: bool) -> Digest:
    digest = parse_digest("sha256:" + hashlib.sha256(blob).hexdigest())
    files = [(layout.blob_data(digest), blob)] + ([(layout.layer_link(REPOSITORY, digest), str(digest).encode())] if linked else [])
    for key, content in files:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(content)
    return digest


def _manifest(blobs: list[tuple[Digest, int]]) -> bytes:
    return orjson.dumps({"schemaVersion": 2, "config": {"digest": str(blobs[0][0]), "size": blobs[0][1]},
                         "layers": [{"digest": str(digest), "size": size} for digest, size in blobs]})


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def _edge(tmp_path: Path) -> tuple[EdgeCache, HeldLinks]:
    environ = {"MIRROR_CACHE_DIR": str(tmp_path / "cache"), "MIRROR_FILL_PREFETCH": "true"}
    upstream = HeldLinks(tmp_path / "bucket")
    return EdgeCache(config.load(None, environ=environ), upstream), upstream


def test_a_blob_get_during_the_prefetchs_link_check_joins_a_fill_planned_from_the_manifest(tmp_path: Path):
    blob = random.Random(11).randbytes(3 * MIB)
    digest = _store(tmp_path / "bucket", blob, linked=True)

    async def scenario() -> None:
        edge, upstream = _edge(tmp_path)
        try:
            edge.prefetcher.manifest_served(REPOSITORY, parse_digest("sha256:" + "2" * 64), _manifest([(digest, len(blob))]))
            await _settle()  # the prefetch waits for its link check
            opening = asyncio.ensure_future(edge.open_blob(REPOSITORY, digest))
            await _settle()
            fill = edge.fills.running(digest)
            assert fill is not None and fill.prefetched, "the GET started a fill of its own"
            upstream.gate.set()
            (await opening).close()
            assert fill.task is not None
            await asyncio.wait({fill.task})
            assert fill.committed and edge.store.contains(digest)
        finally:
            upstream.gate.set()
            await edge.close()

    asyncio.run(scenario())


def test_a_get_of_a_blob_its_repository_does_not_link_stops_the_fill_it_claimed(tmp_path: Path):
    blob = random.Random(12).randbytes(3 * MIB)
    digest = _store(tmp_path / "bucket", blob, linked=False)  # in storage, named by the manifest, not linked

    async def scenario() -> None:
        edge, upstream = _edge(tmp_path)
        try:
            edge.prefetcher.manifest_served(REPOSITORY, parse_digest("sha256:" + "3" * 64), _manifest([(digest, len(blob))]))
            await _settle()
            opening = asyncio.ensure_future(edge.open_blob(REPOSITORY, digest))
            await _settle()
            fill = edge.fills.running(digest)
            assert fill is not None and fill.task is not None
            upstream.gate.set()
            with pytest.raises(Unknown):
                await opening
            await asyncio.wait({fill.task})
            assert not fill.committed and not edge.store.contains(digest)
        finally:
            upstream.gate.set()
            await edge.close()

    asyncio.run(scenario())
