"""A manifest is fetched beside its repository's link check (the two round trips overlap), but what that fetch
read is kept only once the link check passed: over a real filesystem backend, in-process, with the fetch made to
finish before the link check answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mirror import config, errors, layout
from mirror.api.failures import registry_error
from mirror.cache.edge import EdgeCache
from mirror.domain import Problem
from mirror.reference import Digest, parse_digest
from mirror.upstream.filesystem import FilesystemUpstream
from tests.support.bucket_files import put
from tests.support.digests import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class LinksAfterData(FilesystemUpstream):
    """The filesystem backend, except that link reads wait until a blob's data has been read: the manifest fetch
    started beside a link check always finishes first."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.data_read = asyncio.Event()

    async def read(self, key: str, max_size: int) -> bytes:
        if key.endswith("/link"):
            await asyncio.wait_for(self.data_read.wait(), 10)
        try:
            return await super().read(key, max_size)
        finally:
            if key.endswith("/data"):
                self.data_read.set()


def _stored_manifest(root: Path, owner: str) -> Digest:
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
    digest = parse_digest(digest_of(manifest))
    put(root, layout.blob_data(digest), manifest)
    put(root, layout.manifest_revision_link(owner, digest), str(digest).encode())
    return digest


def test_a_manifest_fetched_beside_a_failing_link_check_is_not_kept(tmp_path):
    backend = LinksAfterData(tmp_path / "bucket")
    digest = _stored_manifest(backend.root, "team/owner")
    settings = config.load(None, environ={"MIRROR_CACHE_DIR": str(tmp_path / "cache")})

    async def scenario() -> tuple[bool, int, bytes]:
        await backend.start()
        edge = EdgeCache(settings, backend)
        try:
            with pytest.raises(Problem) as refused:
                await edge.manifest("team/stranger", digest)
            assert registry_error(refused.value).code is errors.MANIFEST_UNKNOWN
            assert backend.data_read.is_set()  # the fetch beside the link check did read the manifest
            kept = edge.store.contains(digest), edge.manifest_memory_bytes()
            owner = await edge.manifest("team/owner", digest)
            return kept[0], kept[1], owner.data
        finally:
            await edge.close()

    stored, in_memory, served = asyncio.run(scenario())
    assert (stored, in_memory) == (False, 0)
    assert digest_of(served) == str(digest)
