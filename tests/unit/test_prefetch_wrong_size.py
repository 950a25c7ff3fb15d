"""A prefetch is planned from the size a manifest gives, which nothing guarantees (a push may state any size). A
client's GET that joins such a fill must still get the blob: the fill tells its readers the size only once the
bucket confirmed it (the first GET's Content-Range), and a reader whose fill failed on a wrong size reads from a
fill of its own, which learns the right size.

In-process, on a real filesystem backend; the backend's first read of the blob is held until the client's GET has
joined the prefetch, so the two surely meet.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import AsyncIterator

import orjson

from mirror import config, layout
from mirror.cache.edge import EdgeCache
from mirror.reference import Digest, parse_digest
from mirror.upstream.filesystem import FilesystemUpstream

MIB = 1024 * 1024
REPOSITORY = "team/app"


class HeldFirstRead(FilesystemUpstream):
    """A filesystem backend whose first reads of blobs wait until the test opens `gate`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = asyncio.Event()

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        await self.gate.wait()
        return await super().read_first(key, length)


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def test_a_get_joining_a_prefetch_planned_from_a_wrong_size_gets_the_blob(tmp_path: Path):
    blob = random.Random(13).randbytes(3 * MIB)
    digest: Digest = parse_digest("sha256:" + hashlib.sha256(blob).hexdigest())
    for key, content in ((layout.blob_data(digest), blob), (layout.layer_link(REPOSITORY, digest), str(digest).encode())):
        (tmp_path / "bucket" / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "bucket" / key).write_bytes(content)
    wrong = orjson.dumps({"schemaVersion": 2, "config": {"digest": str(digest), "size": len(blob) + 1000},
                          "layers": [{"digest": str(digest), "size": len(blob) + 1000}]})

    async def scenario() -> None:
        upstream = HeldFirstRead(tmp_path / "bucket")
        edge = EdgeCache(config.load(None, environ={"MIRROR_CACHE_DIR": str(tmp_path / "cache"), "MIRROR_FILL_PREFETCH": "true"}),
                         upstream)
        try:
            assert await edge.links.is_linked(REPOSITORY, "blob", digest)  # the prefetch starts without a round trip
            edge.prefetcher.manifest_served(REPOSITORY, parse_digest("sha256:" + "4" * 64), wrong)
            await _settle()
            prefetch = edge.fills.running(digest)
            assert prefetch is not None and prefetch.prefetched
            opening = asyncio.ensure_future(edge.open_blob(REPOSITORY, digest))
            await _settle()  # the GET joined the prefetch, which waits for its first read
            upstream.gate.set()
            reader = await asyncio.wait_for(opening, 30)
            try:
                assert reader.size == len(blob)
            finally:
                reader.close()
        finally:
            upstream.gate.set()
            await edge.close()

    asyncio.run(scenario())
