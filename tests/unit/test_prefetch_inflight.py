"""``fill.prefetch_inflight_bytes``: the prefetches of one edge never hold more than that many layer bytes in
running fills at once, whatever the manifests ask for; the rest waits its turn and is prefetched later.

In-process, on a real filesystem backend and a real content store; the backend's first reads are held until the
test lets each go, so the fills in flight can be counted without timing anything. The repository's link answers
are read before the manifest is served, so nothing but the event loop runs between serving it and the fills'
start (a few loop turns settle it).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import AsyncIterator

import orjson

from mirror import layout
from mirror.cache.fills import FillManager
from mirror.cache.links import LinkCache
from mirror.cache.prefetch import ByteLimit, Prefetcher
from mirror.cache.store import ContentStore
from mirror.config import CacheConfig, FillConfig
from mirror.reference import Digest, parse_digest
from mirror.upstream.filesystem import FilesystemUpstream

MIB = 1024 * 1024
LAYERS = 5
LIMIT = 2 * MIB  # two of the five 1 MiB layers at a time
REPOSITORY = "team/app"


class HeldReads(FilesystemUpstream):
    """A filesystem backend whose blob reads wait until the test releases their key."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gates: dict[str, asyncio.Event] = {}

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        await self.gates.setdefault(key, asyncio.Event()).wait()
        return await super().read_first(key, length)


def _store_image(root: Path, blobs: list[bytes]) -> list[tuple[Digest, int]]:
    described = []
    for blob in blobs:
        digest = parse_digest("sha256:" + hashlib.sha256(blob).hexdigest())
        for key, content in ((layout.blob_data(digest), blob), (layout.layer_link(REPOSITORY, digest), str(digest).encode())):
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(content)
        described.append((digest, len(blob)))
    return described


def _manifest(layers: list[tuple[Digest, int]]) -> bytes:
    return orjson.dumps({"schemaVersion": 2, "config": {"digest": str(layers[0][0]), "size": layers[0][1]},
                         "layers": [{"digest": str(digest), "size": size} for digest, size in layers]})


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def test_prefetches_never_hold_more_than_the_inflight_bytes_at_once(tmp_path: Path):
    generator = random.Random(5)
    layers = _store_image(tmp_path / "root", [generator.randbytes(MIB) for _ in range(LAYERS)])
    settings = FillConfig(prefetch=True, prefetch_inflight_bytes=LIMIT, parallelism=1, first_part_size=2 * MIB)

    async def scenario() -> None:
        upstream = HeldReads(tmp_path / "root")
        store = ContentStore(tmp_path / "cache", 64 * MIB)
        links = LinkCache(upstream, tmp_path / "links", CacheConfig())
        fills = FillManager(store, upstream, settings)
        prefetcher = Prefetcher(links, fills, settings)
        try:
            for digest, _ in layers:
                assert await links.is_linked(REPOSITORY, "blob", digest)
            prefetcher.manifest_served(REPOSITORY, parse_digest("sha256:" + "1" * 64), _manifest(layers))
            most = 0
            while not all(store.contains(digest) for digest, _ in layers):
                await _settle()
                running = [(digest, size) for digest, size in layers if fills.running(digest) is not None]
                most = max(most, sum(size for _, size in running))
                assert sum(size for _, size in running) <= LIMIT, f"{len(running)} layers prefetched at once"
                assert running, "prefetch stalled"
                digest = running[0][0]
                upstream.gates.setdefault(layout.blob_data(digest), asyncio.Event()).set()
                fill = fills.running(digest)
                assert fill is not None and fill.task is not None
                await asyncio.wait({fill.task})
            assert most == LIMIT  # the bound was reached, not just respected
        finally:
            for gate in upstream.gates.values():
                gate.set()
            await prefetcher.close()
            await fills.close()
            links.close()
            store.close()

    asyncio.run(scenario())


def test_one_prefetch_larger_than_the_inflight_bytes_runs_alone():
    async def scenario() -> None:
        limit = ByteLimit(LIMIT)
        await limit.acquire(3 * LIMIT)  # larger than the limit: admitted when nothing else is held
        second = asyncio.ensure_future(limit.acquire(1))
        await _settle()
        assert not second.done()
        await limit.release(3 * LIMIT)
        await asyncio.wait_for(second, 5)

    asyncio.run(scenario())
