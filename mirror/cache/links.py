"""Tag → digest resolution and repository link checks, each cached with a TTL and bounded in bytes.

Tags move, so a resolved tag is trusted for ``cache.tag_ttl``. Links that put a digest in a repository
(``_layers/.../link``, ``_manifests/revisions/.../link``) change only on a delete, which registry:2 or another
edge may make at any time: a link answer is trusted for ``cache.link_ttl`` (long by default: a delete is rare
and one link read per repository and digest per TTL is cheap), then read again. When the backend fails, a
stale tag or link is served and counted (``mirror_cache_requests_total{result="stale"}``), so a node whose
backend is down, even after a reboot, still serves what it has. Only positive link answers are cached.

Both caches live in one in-memory LRU bounded by ``cache.link_memory`` (estimated bytes per entry) and in a
small diskcache beside the content (the persisted copy, read after a restart) bounded by ``disk_limit``.

A tag read that started before a push (or tag delete) through this edge must not overwrite what the push
recorded: every such write bumps a counter, and a read stores its answer only if no write happened meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cachetools
import diskcache

from mirror import layout, metrics
from mirror.cache.singleflight import SingleFlight
from mirror.config import MIB, CacheConfig
from mirror.reference import Digest, parse_digest
from mirror.upstream import BackendError, NotFound, Upstream
from mirror.domain import Problem, Unavailable, Unknown

log = logging.getLogger(__name__)

LINK_MAX_SIZE = 1024
LINK_DISK_LIMIT = 64 * MIB
# Estimated bytes one cached answer costs besides its key text: the LRU's three dict slots, the key tuple,
# string headers, the entry and a tag's digest (tracemalloc on CPython 3.11: ~350 B for a link, ~500 B for a
# tag; rounded up with a margin).
ENTRY_OVERHEAD = 640


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: Digest | None  # the tag's target; None for a link (its presence is the answer)
    checked_at: float  # wall clock, so a persisted entry ages across restarts
    size: int


def _entry(key: tuple[str, ...], digest: Digest | None, checked_at: float) -> _Entry:
    return _Entry(digest, checked_at, ENTRY_OVERHEAD + sum(len(part) for part in key))


class LinkCache:
    def __init__(
        self,
        upstream: Upstream,
        directory: Path,
        settings: CacheConfig,
        disk_limit: int = LINK_DISK_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._upstream = upstream
        self._clock = clock  # wall time (persisted entries age across restarts); tests pass a fake one
        self._tag_ttl = settings.tag_ttl
        self._link_ttl = settings.link_ttl
        self._memory: cachetools.LRUCache[tuple[str, ...], _Entry] = cachetools.LRUCache(
            maxsize=settings.link_memory, getsizeof=lambda entry: entry.size
        )
        self._persisted = diskcache.Cache(
            str(directory), size_limit=disk_limit, eviction_policy="least-recently-stored"
        )
        self._tag_writes = 0
        self._link_forgets = 0
        self._flight: SingleFlight[object] = SingleFlight()

    def close(self) -> None:
        self._persisted.close()

    def memory_bytes(self) -> int:
        """Estimated bytes held by the in-memory tag and link answers (at most ``cache.link_memory``)."""
        return int(self._memory.currsize)

    def disk_bytes(self) -> int:
        """Bytes of the persisted copy on disk."""
        return int(self._persisted.volume())

    # -- tags ---------------------------------------------------------------------------------------------

    def remember_tag(self, name: str, tag: str, digest: Digest) -> None:
        """Record a tag this edge just pointed at `digest` (a push): fresh for a full TTL, and wins over any
        tag read still in flight."""
        self._tag_writes += 1
        self._store_tag(name, tag, digest)

    def forget_tag(self, name: str, tag: str) -> None:
        """Drop a tag deleted through this edge; a read still in flight will not bring it back."""
        self._tag_writes += 1
        self._memory.pop(("tag", name, tag), None)
        self._persisted.delete(("tag", name, tag))

    def forget_tags_pointing_at(self, name: str, digest: Digest) -> int:
        """Drop every remembered tag of `name` that points at `digest` (a manifest deleted elsewhere, told by an
        event); a tag read in flight will not bring one back. The number of tags dropped."""
        self._tag_writes += 1
        target = str(digest)
        stale = [key for key, entry in list(self._memory.items()) if key[0] == "tag" and key[1] == name and entry.digest == digest]
        for key in stale:
            self._memory.pop(key, None)
        persisted = [key for key in self._persisted.iterkeys()
                     if isinstance(key, tuple) and key[:2] == ("tag", name) and self._persisted.get(key) == target]
        for key in persisted:
            self._persisted.delete(key)
        return len(set(stale) | set(persisted))

    async def resolve_tag(self, name: str, tag: str) -> Digest:
        """The digest `name:tag` points at; MANIFEST_UNKNOWN when the tag does not exist."""
        key = ("tag", name, tag)
        cached = self._memory.get(key)
        if cached is not None and self._clock() - cached.checked_at < self._tag_ttl:
            metrics.cache_requests.labels("tag", "hit").inc()
            assert cached.digest is not None
            return cached.digest
        writes = self._tag_writes
        try:
            # A read that starts after a write through this edge never joins one that started before it.
            digest = await self._flight.do((*key, writes), lambda: self._read_tag(name, tag, writes))
        except NotFound:
            if self._tag_writes == writes:
                self._memory.pop(key, None)
                self._persisted.delete(key)
            raise Unknown("manifest", f"manifest tagged {tag!r} is not in repository {name!r}", {"tag": tag}) from None
        except BackendError as error:
            stale = cached.digest if cached is not None else self._persisted_tag(name, tag)
            if stale is None:
                raise Unavailable.of(error) from error
            metrics.cache_requests.labels("tag", "stale").inc()
            return stale
        metrics.cache_requests.labels("tag", "miss").inc()
        assert isinstance(digest, Digest)
        return digest

    async def _read_tag(self, name: str, tag: str, writes: int) -> Digest:
        digest = _parse_link(await self._upstream.read(layout.tag_current_link(name, tag), LINK_MAX_SIZE))
        if self._tag_writes == writes:
            self._store_tag(name, tag, digest)
        return digest

    def _store_tag(self, name: str, tag: str, digest: Digest) -> None:
        key = ("tag", name, tag)
        self._memory[key] = _entry(key, digest, self._clock())
        self._persist(key, str(digest))

    def _persist(self, key: tuple[str, ...], value: object) -> None:
        """Keep the on-disk copy too, when the disk lets us: the in-memory entry is what answers until then."""
        try:
            self._persisted.set(key, value)
        except (OSError, sqlite3.Error) as error:
            log.warning("link cache not persisted: %s", error)

    def _persisted_tag(self, name: str, tag: str) -> Digest | None:
        value = self._persisted.get(("tag", name, tag))
        return parse_digest(value) if isinstance(value, str) else None

    # -- links --------------------------------------------------------------------------------------------

    def remember_link(self, name: str, kind: str, digest: Digest) -> None:
        """Record a link this edge just wrote (or read) in the backend: trusted for ``cache.link_ttl``."""
        key = ("link", name, kind, str(digest))
        now = self._clock()
        self._memory[key] = _entry(key, None, now)
        self._persist(key, now)

    def forget_link(self, name: str, kind: str, digest: Digest) -> None:
        """Drop a remembered link after a delete (through this edge, or told by a registry event); a link read in
        flight will not bring it back."""
        key = ("link", name, kind, str(digest))
        self._link_forgets += 1
        self._memory.pop(key, None)
        self._persisted.delete(key)

    async def is_linked(self, name: str, kind: str, digest: Digest) -> bool:
        """Whether repository `name` links `digest` as a ``manifest`` or a ``blob``, as registry:2 decides it.

        A manifest counts when linked as a revision or (registry:2 before 2.1 did this) as a layer.
        """
        key = ("link", name, kind, str(digest))
        checked_at = self._link_checked_at(key)
        if checked_at is not None and self._clock() - checked_at < self._link_ttl:
            return True
        forgets = self._link_forgets
        try:
            # A read that starts after a forget never joins one that started before it.
            linked = await self._flight.do((*key, forgets), lambda: self._read_links(name, kind, digest, forgets))
        except BackendError as error:
            if checked_at is None:
                raise Unavailable.of(error) from error
            metrics.cache_requests.labels("link", "stale").inc()
            return True
        assert isinstance(linked, bool)
        if not linked:  # an answer remembered from before is wrong now
            self._memory.pop(key, None)
            self._persisted.delete(key)
        return linked

    def _link_checked_at(self, key: tuple[str, ...]) -> float | None:
        """When the link was last seen, from memory or (after a restart) from disk; None when never seen."""
        cached = self._memory.get(key)
        if cached is not None:
            return cached.checked_at
        persisted = self._persisted.get(key)
        if not isinstance(persisted, float):
            return None
        self._memory[key] = _entry(key, None, persisted)
        return persisted

    async def _read_links(self, name: str, kind: str, digest: Digest, forgets: int) -> bool:
        keys: list[layout.LinkKey] = [layout.layer_link(name, digest)]
        if kind == "manifest":
            keys.insert(0, layout.manifest_revision_link(name, digest))
        for key in keys:
            try:
                target = _parse_link(await self._upstream.read(key, LINK_MAX_SIZE))
            except NotFound:
                continue
            if target == digest:
                if self._link_forgets == forgets:
                    self.remember_link(name, kind, digest)
                return True
        return False


def _parse_link(data: bytes) -> Digest:
    try:
        return parse_digest(data.decode().strip())
    except (UnicodeDecodeError, Problem):
        raise BackendError(f"link file holds no valid digest: {data[:80]!r}") from None
