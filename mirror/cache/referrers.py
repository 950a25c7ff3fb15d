"""The referrers of a subject in a repository, read from the bucket and cached at the edge like tags.

A list is gathered from two places:
- the edge's referrers index (``_referrers/<subject>/``, written by edges on push and by ``edge-mirror reindex``);
- the referrers tag schema (``<alg>-<hex>`` tag) that clients keep on registries without the referrers API, such
  as registry:2: every manifest it lists that the repository holds and whose ``subject`` is the digest
  (spec.md "Enabling the Referrers API").
Only manifests the repository still links are listed, as registry:2 scopes every manifest read.

A list is trusted for ``cache.tag_ttl``; pushes and deletes through this edge drop it at once; other edges see
them after the TTL. When the backend fails, a stale list is served (and counted). Memory is bounded: at most
`MAX_REFERRERS` descriptors and `LIST_MAX_BYTES` of them per subject (the first by digest are kept), and
`CACHE_MAX_BYTES` cached in all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

import cachetools
import orjson

from mirror import layout, metrics
from mirror.cache.links import LinkCache
from mirror.cache.singleflight import SingleFlight
from mirror.mediatypes import MANIFEST_MAX_SIZE
from mirror.reference import Digest
from mirror.referrers import index
from mirror.upstream import BackendError, NotFound, TooLarge, Upstream
from mirror.domain import Problem, Unavailable

log = logging.getLogger(__name__)

MAX_REFERRERS = 10_000
LIST_MAX_BYTES = 16 * 1024 * 1024
CACHE_MAX_BYTES = 64 * 1024 * 1024
READ_CONCURRENCY = 16

Descriptors = list[dict[str, Any]]


@dataclass(frozen=True)
class _List:
    descriptors: Descriptors
    fetched_at: float
    size: int  # bytes of descriptor JSON, what the cache is bounded by


@dataclass
class _Reads:
    """The reads of one list load: at most READ_CONCURRENCY at once, and a byte budget for what they keep."""

    slots: asyncio.Semaphore
    remaining: int

    def spent(self) -> bool:
        return self.remaining <= 0


class _Manifest(Protocol):
    data: bytes


ManifestReader = Callable[[str, Digest], Awaitable[_Manifest]]


class ReferrersCache:
    def __init__(
        self,
        upstream: Upstream,
        links: LinkCache,
        manifest: ManifestReader,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`manifest(name, digest)` returns a manifest if `name` links it (a `mirror.domain.Problem` otherwise);
        `clock` tells the time lists are aged by (tests pass a fake one)."""
        self._upstream = upstream
        self._clock = clock
        self._links = links
        self._manifest = manifest
        self._ttl = ttl
        self._lists: cachetools.LRUCache[tuple[str, Digest], _List] = cachetools.LRUCache(
            CACHE_MAX_BYTES, getsizeof=lambda value: value.size + 64
        )
        self._flight: SingleFlight[Descriptors] = SingleFlight()
        # Bumped by every change through this edge: a load that began before a change neither joins later
        # requests nor stores its (possibly older) list, so a pusher told OCI-Subject always finds its manifest.
        self._epoch = 0

    def changed(self, name: str, subject: Digest) -> None:
        """A push or delete through this edge changed the referrers of `subject`: read them afresh next time."""
        self._epoch += 1
        self._lists.pop((name, subject), None)

    async def referrers(self, name: str, subject: Digest) -> Descriptors:
        """Every referrer descriptor of `subject` in `name` (unsorted, unfiltered); empty when there is none."""
        key = (name, subject)
        cached = self._lists.get(key)
        if cached is not None and self._clock() - cached.fetched_at < self._ttl:
            metrics.cache_requests.labels("referrers", "hit").inc()
            return cached.descriptors
        try:
            epoch = self._epoch
            found = await self._flight.do((name, subject, epoch), lambda: self._load(name, subject, epoch))
        except Unavailable:
            if cached is None:
                raise
            metrics.cache_requests.labels("referrers", "stale").inc()
            return cached.descriptors
        metrics.cache_requests.labels("referrers", "miss").inc()
        return found

    async def _load(self, name: str, subject: Digest, epoch: int) -> Descriptors:
        limit = _Reads(asyncio.Semaphore(READ_CONCURRENCY), 2 * LIST_MAX_BYTES)
        found: dict[str, dict[str, Any]] = {}
        indexed = await self._entries(name, subject)
        for entry in await asyncio.gather(*(self._indexed(name, subject, digest, limit) for digest in indexed)):
            if entry is not None:
                found[entry["digest"]] = entry
        children = [child for child in await self._fallback_children(name, subject) if str(child) not in found]
        for entry in await asyncio.gather(*(self._from_manifest(name, subject, child, limit) for child in children)):
            if entry is not None:
                found[entry["digest"]] = entry
        descriptors: Descriptors = []
        size = 0
        for digest in sorted(found):
            entry_size = len(orjson.dumps(found[digest]))
            if len(descriptors) == MAX_REFERRERS or size + entry_size > LIST_MAX_BYTES:
                log.warning("%s: referrers of %s exceed %d entries or %d bytes; the rest are left out",
                            name, subject, MAX_REFERRERS, LIST_MAX_BYTES)
                break
            descriptors.append(found[digest])
            size += entry_size
        if epoch == self._epoch:
            self._lists[(name, subject)] = _List(descriptors, self._clock(), size)
        return descriptors

    async def _entries(self, name: str, subject: Digest) -> list[Digest]:
        try:
            listing = await self._upstream.list(layout.referrers_directory(name, subject))
        except BackendError as error:
            raise Unavailable.of(error) from error
        digests = [digest for digest in map(layout.referrer_of_entry, listing.files) if digest is not None]
        if len(digests) > MAX_REFERRERS:
            log.warning("%s has %d referrers of %s; listing the first %d", name, len(digests), subject, MAX_REFERRERS)
        return sorted(digests, key=str)[:MAX_REFERRERS]

    async def _indexed(self, name: str, subject: Digest, digest: Digest, limit: _Reads) -> dict[str, Any] | None:
        """The descriptor of one index entry, if the entry is sound and the repository still links the manifest."""
        async with limit.slots:
            if limit.spent():
                return None
            try:
                data = await self._upstream.read(layout.referrer_entry(name, subject, digest), MANIFEST_MAX_SIZE)
            except (NotFound, TooLarge):
                return None
            except BackendError as error:
                raise Unavailable.of(error) from error
            limit.remaining -= len(data)
            entry = index.decode_entry(data, digest)
            if entry is None or not await self._links.is_linked(name, "manifest", digest):
                return None
            return entry

    async def _fallback_children(self, name: str, subject: Digest) -> list[Digest]:
        """The manifests listed under the referrers tag of `subject`, if a client keeps one in `name`."""
        try:
            tagged = await self._links.resolve_tag(name, index.fallback_tag(subject))
            data = (await self._manifest(name, tagged)).data
        except Unavailable:
            raise
        except Problem:
            return []
        return index.fallback_children(data)[:MAX_REFERRERS]

    async def _from_manifest(self, name: str, subject: Digest, digest: Digest, limit: _Reads) -> dict[str, Any] | None:
        """The descriptor of a manifest the referrers tag lists, if `name` holds it and its subject is `subject`."""
        async with limit.slots:
            if limit.spent():
                return None
            try:
                data = (await self._manifest(name, digest)).data
                limit.remaining -= len(data)
            except Unavailable:
                raise
            except Problem:
                return None
        try:
            found_subject, entry = index.parse_referrer(data, digest)
        except index.NotAReferrer:
            return None
        return entry if found_subject == subject else None
