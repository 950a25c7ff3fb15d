"""Remote registries as a tier behind the bucket: local cache → shared bucket (under a prefix) → remote.

`TieredUpstream` is an `Upstream` like any other, so the cache and its fill engine stay unaware of remotes: they
ask for layout keys, and keys of a routed repository (``<prefix>/<name>``) that the bucket lacks are answered by
the route's `RemoteRegistry` instead:

=============================  =====================================================================
key                            answered by
=============================  =====================================================================
tag ``current/link``           the remote (a HEAD), trusted for the route's ``tag_ttl``; when the remote
                               fails or rate limits, the bucket's copy is served stale
``_layers/.../link``           the bucket, else a HEAD of the blob at the remote
``_manifests/revisions/...``   the bucket, else a HEAD of the manifest at the remote
blob ``data``                  the bucket, else the remote: a manifest GET (checked against its digest
                               here), or ranged blob GETs for the fill (which checks the digest itself)
=============================  =====================================================================

Routing reads the typed keys `mirror.layout` makes (`TagLinkKey`, `LayerLinkKey`, `RevisionLinkKey`, `BlobKey`),
never a key's path: a blob's path names no repository, so its `BlobKey` carries the repository that asks for it.
Whatever comes from a remote is handed to `WriteBack`, which puts it into the bucket once the bytes are verified.

Keys of repositories outside every prefix, other keys, listings and all writes go to the bucket unchanged.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import AsyncIterator, BinaryIO

import cachetools

from mirror import digests, metrics
from mirror.config import RemoteConfig
from mirror.layout import BlobKey, LinkKey, RevisionLinkKey, TagLinkKey
from mirror.reference import Digest
from mirror.upstream.base import BackendError, Listing, MultipartUpload, NotFound, ObjectInfo, Upstream
from mirror.upstream.registry import RemoteRegistry
from mirror.upstream.writeback import WriteBack

TAG_MEMORY_ENTRIES = 10_000
REMOTE_BLOBS_REMEMBERED = 4096


@dataclass
class Route:
    """One ``[[upstream]]``: its remote, and the tag answers it gave within ``tag_ttl``."""

    settings: RemoteConfig
    remote: RemoteRegistry
    tags: cachetools.TTLCache[tuple[str, str], Digest] = field(init=False)

    def __post_init__(self) -> None:
        self.tags = cachetools.TTLCache(maxsize=TAG_MEMORY_ENTRIES, ttl=max(self.settings.tag_ttl, 0.001))

    @property
    def ns(self) -> str:
        return self.settings.ns


class TieredUpstream:
    """The bucket, with each route's remote behind the keys under its prefix."""

    def __init__(self, bucket: Upstream, remotes: list[RemoteConfig], writeback: WriteBack | None = None) -> None:
        self.bucket = bucket
        self.name = bucket.name
        self.routes = [Route(settings, RemoteRegistry(settings)) for settings in remotes]
        self.writeback = writeback or WriteBack(bucket)
        self._by_ns = {ns: route for route in self.routes for ns in (route.ns, *route.settings.aliases)}
        self._default = next((route for route in self.routes if route.settings.default), None)
        # Blobs whose first bytes came from a remote: the fill's later parts go straight there.
        self._remote_blobs: cachetools.LRUCache[Digest, tuple[Route, str]] = cachetools.LRUCache(
            REMOTE_BLOBS_REMEMBERED
        )

    # -- routing --------------------------------------------------------------------------------------------

    def bucket_name(self, name: str, ns: str | None) -> str:
        """The bucket repository for `name` asked with ``?ns=`` (None: no ns). Unknown ns: the bucket as is."""
        route = self._default if ns is None else self._by_ns.get(ns.strip().lower())
        return name if route is None else f"{route.settings.prefix}/{name}"

    def split(self, bucket_name: str | None) -> tuple[Route, str] | None:
        """The route whose prefix holds `bucket_name`, and the name at the remote."""
        if bucket_name:
            for route in self.routes:
                if bucket_name.startswith(route.settings.prefix + "/"):
                    return route, bucket_name[len(route.settings.prefix) + 1 :]
        return None

    def forget_tag(self, bucket_name: str, tag: str) -> None:
        """Make the next lookup of this tag ask the remote (``edge-mirror purge``)."""
        routed = self.split(bucket_name)
        if routed is not None:
            routed[0].tags.pop((routed[1], tag), None)

    # -- lifetime -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bucket.start()
        for route in self.routes:
            await route.remote.start()

    async def close(self) -> None:
        await self.writeback.close()  # normally done already by the app, while the cache was still open
        for route in self.routes:
            await route.remote.close()
        await self.bucket.close()

    async def probe(self) -> None:
        await self.bucket.probe()

    # -- listings and writes: the bucket's, unchanged ---------------------------------------------------------

    async def list(self, directory: str) -> Listing:
        return await self.bucket.list(directory)

    async def put(self, key: str, data: bytes) -> None:
        await self.bucket.put(key, data)

    async def delete(self, key: str) -> None:
        await self.bucket.delete(key)

    async def delete_tree(self, directory: str) -> None:
        await self.bucket.delete_tree(directory)

    async def copy(self, source: str, destination: str, size: int) -> None:
        await self.bucket.copy(source, destination, size)

    async def start_multipart(self, key: str) -> str:
        return await self.bucket.start_multipart(key)

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        return await self.bucket.put_part(key, upload_id, number, body, size)

    async def list_parts(self, key: str, upload_id: str) -> dict[int, str]:
        return await self.bucket.list_parts(key, upload_id)

    async def complete_multipart(self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]) -> None:
        await self.bucket.complete_multipart(key, upload_id, parts)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await self.bucket.abort_multipart(key, upload_id)

    async def multipart_uploads(self, prefix: str) -> builtins.list[MultipartUpload]:
        return await self.bucket.multipart_uploads(prefix)

    # -- reads ----------------------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        try:
            return await self.bucket.stat(key)
        except NotFound:
            routed = self._blob_route(key)
            if routed is None:
                raise
        assert isinstance(key, BlobKey)
        return ObjectInfo(size=await routed[0].remote.blob_size(routed[1], key.digest))

    async def read(self, key: str, max_size: int) -> bytes:
        routed = self.split(key.repository) if isinstance(key, (TagLinkKey, LinkKey, BlobKey)) else None
        if routed is None:
            return await self.bucket.read(key, max_size)
        route, remote_name = routed
        if isinstance(key, TagLinkKey):
            return await self._tag(route, remote_name, key, max_size)
        try:
            return await self.bucket.read(key, max_size)
        except NotFound:
            pass
        assert isinstance(key, (LinkKey, BlobKey))
        digest = key.digest
        if isinstance(key, RevisionLinkKey):
            if await route.remote.resolve(remote_name, str(digest)) != digest:
                raise NotFound(key)
            return str(digest).encode()
        if isinstance(key, LinkKey):  # a layer link
            await route.remote.blob_size(remote_name, digest)
            return str(digest).encode()
        data = await route.remote.manifest(remote_name, digest, max_size)
        try:
            digests.check_bytes(digest, data, f"{route.ns}: manifest")
        except digests.DigestMismatch as mismatch:  # the remote's bytes are wrong: a backend failure
            raise BackendError(str(mismatch)) from mismatch
        self.writeback.manifest(key.repository, digest, data)
        return data

    async def _tag(self, route: Route, remote_name: str, key: TagLinkKey, max_size: int) -> bytes:
        remembered = route.tags.get((remote_name, key.tag))
        if remembered is not None:
            return str(remembered).encode()
        try:
            digest = await route.remote.resolve(remote_name, key.tag)
        except NotFound:
            raise NotFound(key) from None
        except BackendError as error:
            try:
                stale = await self.bucket.read(key, max_size)
            except (NotFound, BackendError):
                raise error from None
            metrics.remote_stale.labels(route.ns).inc()
            return stale
        route.tags[(remote_name, key.tag)] = digest
        self.writeback.tag(key.repository, key.tag, digest)
        return str(digest).encode()

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        try:
            first = await self.bucket.read_first(key, length)
            if isinstance(key, BlobKey):
                self._remote_blobs.pop(key.digest, None)  # written back since: this fill reads the bucket
            return first
        except NotFound:
            routed = self._blob_route(key)
            if routed is None:
                raise
        assert isinstance(key, BlobKey)
        route, remote_name = routed
        size, chunks = await route.remote.blob_range(remote_name, key.digest, 0, length)
        self._remote_blobs[key.digest] = routed
        self.writeback.blob(key.repository, key.digest)
        return size, chunks

    async def read_last(self, key: str, length: int) -> tuple[int, int, AsyncIterator[bytes]]:
        """The bucket's suffix read; a blob only the remote tier holds is read from its start (start 0)."""
        try:
            last = await self.bucket.read_last(key, length)
            if isinstance(key, BlobKey):
                self._remote_blobs.pop(key.digest, None)
            return last
        except NotFound:
            if self._blob_route(key) is None:
                raise
        size, chunks = await self.read_first(key, length)
        return size, 0, chunks

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        routed = self._remote_blobs.get(key.digest) if isinstance(key, BlobKey) else None
        if routed is None:
            async for chunk in self.bucket.read_range(key, start, end):
                yield chunk
            return
        assert isinstance(key, BlobKey)
        _, chunks = await routed[0].remote.blob_range(routed[1], key.digest, start, end)
        async for chunk in chunks:
            yield chunk

    def _blob_route(self, key: str) -> tuple[Route, str] | None:
        """For a blob key: the route and remote name of the repository that asks for it."""
        return self.split(key.repository) if isinstance(key, BlobKey) else None
