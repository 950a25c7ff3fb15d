"""The cache's side of `mirror.push.notices.CacheNotices`: what a push through this edge published."""

from __future__ import annotations

from mirror.cache.edge import EdgeCache
from mirror.reference import Digest


class EdgeCacheNotices:
    """`CacheNotices` as the edge cache takes them: each notice updates its link and tag caches or its manifests."""

    def __init__(self, edge: EdgeCache) -> None:
        self._edge = edge

    async def is_linked(self, name: str, kind: str, digest: Digest) -> bool:
        return await self._edge.links.is_linked(name, kind, digest)

    def linked(self, name: str, kind: str, digest: Digest) -> None:
        self._edge.links.remember_link(name, kind, digest)

    def unlinked(self, name: str, kind: str, digest: Digest) -> None:
        self._edge.links.forget_link(name, kind, digest)

    def tagged(self, name: str, tag: str, digest: Digest) -> None:
        self._edge.links.remember_tag(name, tag, digest)

    def untagged(self, name: str, tag: str) -> None:
        self._edge.links.forget_tag(name, tag)

    def manifest_published(self, digest: Digest, data: bytes) -> None:
        self._edge.cache_manifest(digest, data)

    def referrers_changed(self, name: str, subject: Digest) -> None:
        self._edge.referrers.changed(name, subject)


