"""``edge-mirror reindex [NAME]``: rebuild the referrers index of one repository (or all) from its revisions.

registry:2 writes no referrers index, so manifests with a ``subject`` pushed through it are invisible to the
index until this runs (clients that keep the referrers tag are found without it). For each repository: every
manifest revision is read, the ones with a subject get their entry (rewritten: idempotent), and entries whose
manifest is no longer a revision of the repository (deleted through registry:2, or garbage collected) go.
Safe to run while edges serve: it only writes index entries; edges see the result within ``cache.tag_ttl``.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from mirror import layout
from mirror.config import StorageConfig
from mirror.domain import Problem
from mirror.mediatypes import MANIFEST_MAX_SIZE
from mirror.reference import SUPPORTED_ALGORITHMS, Digest, parse_digest, parse_name
from mirror.referrers import index
from mirror.upstream import BackendError, NotFound, TooLarge, Upstream, open_upstream


READ_CONCURRENCY = 8


@dataclass
class Summary:
    repository: str
    revisions: int = 0
    indexed: int = 0
    removed: int = 0


async def repositories(upstream: Upstream) -> list[str]:
    """Every repository in storage, as registry:2's catalog finds them: directories holding ``_layers``."""
    found: list[str] = []
    pending = [""]
    while pending:
        relative = pending.pop()
        listing = await upstream.list(layout.repository(relative) if relative else layout.REPOSITORIES)
        if "_layers" in listing.directories:
            found.append(relative)
        pending.extend(
            f"{relative}/{child}" if relative else child
            for child in listing.directories
            if not layout.is_repository_marker(child)
        )
    return sorted(found)


async def reindex(upstream: Upstream, name: str) -> Summary:
    """Make the referrers index of `name` match its manifest revisions. BackendError propagates."""
    summary = Summary(name)
    revisions: list[Digest] = []
    for algorithm in SUPPORTED_ALGORITHMS:
        listing = await upstream.list(layout.manifest_revisions_directory(name, algorithm))
        revisions += [digest for digest in (_digest(algorithm, hex_) for hex_ in listing.directories) if digest]

    limit = asyncio.Semaphore(READ_CONCURRENCY)
    wanted: set[str] = set()

    async def index_one(digest: Digest) -> None:
        async with limit:
            if not await _is_revision(upstream, name, digest):
                return  # an empty directory left by a delete on a backend that keeps empty prefixes
            summary.revisions += 1
            try:
                data = await upstream.read(layout.blob_data(digest), MANIFEST_MAX_SIZE)
            except (NotFound, TooLarge):
                return
            try:
                subject, entry = index.parse_referrer(data, digest)
            except index.NotAReferrer:
                return
            key = layout.referrer_entry(name, subject, digest)
            await upstream.put(key, index.encode_entry(entry))
            wanted.add(key)
            summary.indexed += 1

    await asyncio.gather(*(index_one(digest) for digest in revisions))
    for key, referrer in await _entries(upstream, name):
        if key not in wanted and not await _is_revision(upstream, name, referrer):
            await upstream.delete(key)  # re-checked first: an edge may have pushed it since the listing
            summary.removed += 1
    return summary


async def _entries(upstream: Upstream, name: str) -> list[tuple[str, Digest]]:
    """Every entry of the index of `name`: its key and the referrer it names."""
    entries: list[tuple[str, Digest]] = []
    for algorithm in (await upstream.list(layout.referrers_root(name))).directories:
        for hex_ in (await upstream.list(layout.referrers_subjects_directory(name, algorithm))).directories:
            subject = _digest(algorithm, hex_)
            if subject is None:
                continue
            for file_name in (await upstream.list(layout.referrers_directory(name, subject))).files:
                referrer = layout.referrer_of_entry(file_name)
                if referrer is not None:
                    entries.append((layout.referrer_entry(name, subject, referrer), referrer))
    return entries


async def _is_revision(upstream: Upstream, name: str, digest: Digest) -> bool:
    """Whether `name` links manifest `digest` now (its revision link exists and names it)."""
    try:
        link = await upstream.read(layout.manifest_revision_link(name, digest), 1024)
    except NotFound:
        return False
    return link.decode(errors="replace").strip() == str(digest)


def _digest(algorithm: str, encoded: str) -> Digest | None:
    try:
        return parse_digest(f"{algorithm}:{encoded}")
    except Problem:
        return None


async def run(storage: StorageConfig, name: str | None) -> int:
    """Reindex `name` (or every repository), printing one line per repository; exit status 1 on a backend error."""
    upstream = open_upstream(storage, pool_size=READ_CONCURRENCY * 2)
    await upstream.start()
    try:
        names = [parse_name(name)] if name else await repositories(upstream)
        for repository in names:
            summary = await reindex(upstream, repository)
            print(
                f"{repository}: {summary.revisions} manifests, {summary.indexed} referrers indexed, "
                f"{summary.removed} stale entries removed",
                flush=True,
            )
    except BackendError as error:
        print(f"edge-mirror: reindex: storage backend unavailable: {error}", file=sys.stderr)
        return 1
    except Problem as error:
        print(f"edge-mirror: reindex: {error.message}", file=sys.stderr)
        return 2
    finally:
        await upstream.close()
    return 0
