"""``edge-mirror purge-uploads --older-than DURATION``: remove what abandoned pushes leave in the bucket.

A client that gives up mid-push leaves its session (``_uploads/<uuid>/``) and, with S3, an incomplete multipart
upload whose parts are stored (and billed) until someone aborts it. This walks the repositories, removes every
session started before the cutoff (aborting its multipart upload), then aborts every multipart upload under
``repositories/`` begun before the cutoff (those whose session is already gone). registry:2's own upload purger
does the first half for its sessions; an S3 lifecycle rule (AbortIncompleteMultipartUpload) is the belt to this
pair of braces — see the README.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import orjson

from mirror import layout
from mirror.push.session import STATE_MAX_SIZE
from mirror.reference import NAME_MAX_LENGTH
from mirror.upstream import BackendError, NotFound, Upstream

STARTED_MAX_SIZE = 256


@dataclass
class PurgeCounts:
    sessions: int = 0
    multipart_uploads: int = 0
    failures: int = 0


async def purge_uploads(upstream: Upstream, older_than: float, dry_run: bool, say: Callable[[str], None]) -> PurgeCounts:
    """Remove (or with `dry_run` only name) sessions and multipart uploads older than `older_than` seconds."""
    cutoff = time.time() - older_than
    counts = PurgeCounts()
    verb = "would remove" if dry_run else "removed"
    async for name in _repositories_with_uploads(upstream):
        for upload_id in (await upstream.list(layout.uploads_directory(name))).directories:
            started = await _started_at(upstream, name, upload_id)
            if started is None or started >= cutoff:
                continue
            try:
                if not dry_run:
                    multipart_id = await _multipart_id(upstream, name, upload_id)
                    if multipart_id is not None:
                        await upstream.abort_multipart(layout.upload_data(name, upload_id), multipart_id)
                    await upstream.delete_tree(layout.upload_directory(name, upload_id))
            except BackendError as error:
                counts.failures += 1
                say(f"could not remove session {name} {upload_id}: {error}")
                continue
            counts.sessions += 1
            say(f"{verb} session {name} {upload_id} started {_when(started)}")
    for upload in await upstream.multipart_uploads(layout.REPOSITORIES + "/"):
        if upload.initiated >= cutoff:
            continue
        if not dry_run:
            await upstream.abort_multipart(upload.key, upload.upload_id)
        counts.multipart_uploads += 1
        say(f"{verb} multipart upload {upload.upload_id} of {upload.key} begun {_when(upload.initiated)}")
    return counts


async def _repositories_with_uploads(upstream: Upstream) -> AsyncIterator[str]:
    """Names of directories under ``repositories/`` that hold ``_uploads``, depth first."""
    pending = [""]
    while pending:
        name = pending.pop()
        directory = layout.repository(name) if name else layout.REPOSITORIES
        listing = await upstream.list(directory)
        if name and "_uploads" in listing.directories:
            yield name
        for child in sorted(listing.directories, reverse=True):
            path = f"{name}/{child}" if name else child
            if not child.startswith("_") and len(path) <= NAME_MAX_LENGTH:
                pending.append(path)


async def _started_at(upstream: Upstream, name: str, upload_id: str) -> float | None:
    try:
        text = (await upstream.read(layout.upload_started_at(name, upload_id), STARTED_MAX_SIZE)).decode().strip()
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (NotFound, BackendError, UnicodeDecodeError, ValueError):
        return None  # not a session we can date; left alone


async def _multipart_id(upstream: Upstream, name: str, upload_id: str) -> str | None:
    try:
        state = orjson.loads(await upstream.read(layout.upload_state(name, upload_id), STATE_MAX_SIZE))
    except (NotFound, orjson.JSONDecodeError):
        return None  # a registry:2 session, or one that never saved a state
    multipart_id = state.get("multipart_id") if isinstance(state, dict) else None
    return multipart_id if isinstance(multipart_id, str) else None


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="seconds")
