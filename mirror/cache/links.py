"""Tag → digest resolution with a TTL and stale-if-error, and cached repository link checks.

Tags move, so a resolved tag is trusted for ``cache.tag_ttl``; after that the backend is asked again, and if
the backend fails the stale answer is served (and counted). Links that put a digest in a repository
(``_layers/.../link``, ``_manifests/revisions/.../link``) are remembered once seen: content is immutable and
registry:2 only removes links on an explicit delete. Both survive a restart (a small diskcache beside the
content), so a node whose backend is down after a reboot still serves what it has.
"""

from __future__ import annotations

import time
from pathlib import Path

import diskcache

from mirror import errors, layout, metrics
from mirror.cache.singleflight import SingleFlight
from mirror.reference import Digest, parse_digest
from mirror.upstream import BackendError, NotFound, Upstream

LINK_MAX_SIZE = 1024


class LinkCache:
    def __init__(self, upstream: Upstream, directory: Path, tag_ttl: float) -> None:
        self._upstream = upstream
        self._tag_ttl = tag_ttl
        self._persisted = diskcache.Cache(str(directory), eviction_policy="none")
        self._tags: dict[tuple[str, str], tuple[Digest, float]] = {}
        self._links: set[tuple[str, str, Digest]] = set()
        self._flight: SingleFlight[object] = SingleFlight()

    def close(self) -> None:
        self._persisted.close()

    def remember_tag(self, name: str, tag: str, digest: Digest) -> None:
        """Record a tag we know points at `digest` now (fresh for a full TTL)."""
        entry = (digest, time.monotonic())
        self._tags[(name, tag)] = entry
        self._persisted.set(("tag", name, tag), str(digest))

    async def resolve_tag(self, name: str, tag: str) -> Digest:
        """The digest `name:tag` points at; MANIFEST_UNKNOWN when the tag does not exist."""
        cached = self._tags.get((name, tag))
        if cached is not None and time.monotonic() - cached[1] < self._tag_ttl:
            metrics.cache_requests.labels("tag", "hit").inc()
            return cached[0]
        try:
            digest = await self._flight.do(("tag", name, tag), lambda: self._read_tag(name, tag))
        except NotFound:
            self._tags.pop((name, tag), None)
            self._persisted.delete(("tag", name, tag))
            raise errors.RegistryError(
                errors.MANIFEST_UNKNOWN, f"manifest tagged {tag!r} is not in repository {name!r}", {"tag": tag}
            ) from None
        except BackendError as error:
            stale = cached[0] if cached is not None else self._persisted_tag(name, tag)
            if stale is None:
                raise errors.unavailable(error) from error
            metrics.cache_requests.labels("tag", "stale").inc()
            return stale
        metrics.cache_requests.labels("tag", "miss").inc()
        assert isinstance(digest, Digest)
        return digest

    async def _read_tag(self, name: str, tag: str) -> Digest:
        digest = _parse_link(await self._upstream.read(layout.tag_current_link(name, tag), LINK_MAX_SIZE))
        self.remember_tag(name, tag, digest)
        return digest

    def _persisted_tag(self, name: str, tag: str) -> Digest | None:
        value = self._persisted.get(("tag", name, tag))
        return parse_digest(value) if isinstance(value, str) else None

    def forget_tag(self, name: str, tag: str) -> None:
        self._tags.pop((name, tag), None)
        self._persisted.delete(("tag", name, tag))

    def forget_link(self, name: str, kind: str, digest: Digest) -> None:
        """Drop a remembered link after a delete through this edge (other edges learn it on their next miss)."""
        self._links.discard((name, kind, digest))
        self._persisted.delete(("link", name, kind, str(digest)))

    def remember_link(self, name: str, kind: str, digest: Digest) -> None:
        self._links.add((name, kind, digest))
        self._persisted.set(("link", name, kind, str(digest)), True)

    async def is_linked(self, name: str, kind: str, digest: Digest) -> bool:
        """Whether repository `name` links `digest` as a ``manifest`` or a ``blob``, as registry:2 decides it.

        A manifest counts when linked as a revision or (registry:2 before 2.1 did this) as a layer.
        """
        if (name, kind, digest) in self._links:
            return True
        if self._persisted.get(("link", name, kind, str(digest))):
            self._links.add((name, kind, digest))
            return True
        linked = await self._flight.do(("link", name, kind, digest), lambda: self._read_links(name, kind, digest))
        assert isinstance(linked, bool)
        return linked

    async def _read_links(self, name: str, kind: str, digest: Digest) -> bool:
        keys = [layout.layer_link(name, digest)]
        if kind == "manifest":
            keys.insert(0, layout.manifest_revision_link(name, digest))
        for key in keys:
            try:
                target = _parse_link(await self._upstream.read(key, LINK_MAX_SIZE))
            except NotFound:
                continue
            except BackendError as error:
                raise errors.unavailable(error) from error
            if target == digest:
                self.remember_link(name, kind, digest)
                return True
        return False


def _parse_link(data: bytes) -> Digest:
    try:
        return parse_digest(data.decode().strip())
    except (UnicodeDecodeError, errors.RegistryError):
        raise BackendError(f"link file holds no valid digest: {data[:80]!r}") from None
