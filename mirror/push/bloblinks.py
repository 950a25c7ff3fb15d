"""A blob's link in a repository (``_layers/<algorithm>/<hex>/link``): written by a finished upload or a mount,
removed by a blob DELETE, and each change told to the read side (`CacheNotices`). The one place push writes or
removes a blob link."""

from __future__ import annotations

from mirror import layout
from mirror.domain import Unavailable, Unknown
from mirror.push.notices import CacheNotices
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Upstream


class BlobLinks:
    def __init__(self, upstream: Upstream, notices: CacheNotices) -> None:
        self._upstream = upstream
        self._notices = notices

    async def is_linked(self, name: str, digest: Digest) -> bool:
        return await self._notices.is_linked(name, "blob", digest)

    async def link(self, name: str, digest: Digest) -> None:
        """Put blob `digest` into repository `name` (its ``_layers`` link), as registry:2 does after a push."""
        with Unavailable.on(BackendError):
            await self._upstream.put(layout.layer_link(name, digest), str(digest).encode())
        self._notices.linked(name, "blob", digest)

    async def unlink(self, name: str, digest: Digest) -> None:
        """Take blob `digest` out of `name` (its data stays for garbage collection), as registry:2 does."""
        if not await self.is_linked(name, digest):
            raise Unknown("blob", f"blob {digest} is not in repository {name!r}")
        with Unavailable.on(NotFound, BackendError):
            await self._upstream.delete(layout.layer_link(name, digest))
        self._notices.unlinked(name, "blob", digest)

    async def mount(self, name: str, digest: Digest, source: str) -> bool:
        """Link a blob of repository `source` into `name` without copying bytes; False when `source` lacks it."""
        if not await self.is_linked(source, digest):
            return False
        try:
            await self._upstream.stat(layout.blob_data(digest))
        except NotFound:
            return False
        except BackendError as error:
            raise Unavailable.of(error) from error
        await self.link(name, digest)
        return True
