"""What push tells the read side, and the one question it asks it: a small interface, passed in, so push never
reaches into the cache's internals (`mirror.cache.pushed.EdgeCacheNotices` implements it)."""

from __future__ import annotations

from typing import Protocol

from mirror.reference import Digest


class CacheNotices(Protocol):
    async def is_linked(self, name: str, kind: str, digest: Digest) -> bool:
        """Whether repository `name` links `digest` as a ``blob`` or a ``manifest`` (as registry:2 decides it)."""

    def linked(self, name: str, kind: str, digest: Digest) -> None:
        """A link was written: `digest` is now in `name`."""

    def unlinked(self, name: str, kind: str, digest: Digest) -> None:
        """A link was removed."""

    def tagged(self, name: str, tag: str, digest: Digest) -> None:
        """`name:tag` points at `digest` now."""

    def untagged(self, name: str, tag: str) -> None:
        """`name:tag` was removed."""

    def manifest_published(self, digest: Digest, data: bytes) -> None:
        """A manifest's verified bytes, so the next pull of it is a hit."""

    def referrers_changed(self, name: str, subject: Digest) -> None:
        """A push or delete changed the referrers of `subject` in `name`."""


class PushEvents(Protocol):
    """Who else hears of a push or delete through this edge (`mirror.events.sender.Sender`: registry event
    envelopes to ``[[notifications.endpoints]]``)."""

    def pushed(self, name: str, digest: Digest, media_type: str, size: int, tag: str | None) -> None:
        """A manifest was published in `name` (under `tag`, when pushed by tag)."""

    def deleted(self, name: str, digest: Digest) -> None:
        """A manifest or blob was deleted from `name`."""


class NoEvents:
    def pushed(self, name: str, digest: Digest, media_type: str, size: int, tag: str | None) -> None:
        pass

    def deleted(self, name: str, digest: Digest) -> None:
        pass
