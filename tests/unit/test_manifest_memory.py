"""The in-memory manifest cache is bounded by bytes (``cache.manifest_memory``), not by a count."""

from __future__ import annotations

import asyncio
import hashlib
import json

from mirror import config
from mirror.cache.edge import EdgeCache
from mirror.reference import parse_digest
from mirror.upstream.filesystem import FilesystemUpstream

MIB = 1024 * 1024


def _manifest(index: int, padding: int) -> bytes:
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [],
        "annotations": {"index": str(index), "padding": "x" * padding},
    }).encode()


def test_manifests_in_memory_stay_within_their_byte_bound(tmp_path):
    environ = {"MIRROR_CACHE_DIR": str(tmp_path / "cache"), "MIRROR_CACHE_MANIFEST_MEMORY": "1MiB"}
    settings = config.load(None, environ=environ)

    async def scenario() -> tuple[int, int]:
        edge = EdgeCache(settings, FilesystemUpstream(tmp_path / "bucket"))
        try:
            for index in range(40):
                data = _manifest(index, 100_000)
                edge.cache_manifest(parse_digest("sha256:" + hashlib.sha256(data).hexdigest()), data)
            return edge.manifest_memory_bytes(), edge.store.volume()
        finally:
            await edge.close()

    in_memory, on_disk = asyncio.run(scenario())
    assert 0 < in_memory <= MIB
    assert on_disk >= 40 * 100_000, "manifests pushed through the edge are all kept on disk"
