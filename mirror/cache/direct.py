"""Streaming a blob straight from the backend, for when the local disk cannot take a partial file."""

from __future__ import annotations

from typing import AsyncIterator

from mirror import digests, metrics
from mirror.cache.fillplan import ConnectionBudget
from mirror.layout import BlobKey
from mirror.upstream import BackendError, NotFound, Upstream


class FillFailed(Exception):
    """The fill could not produce verified content; streams reading from it must abort."""


class WrongSize(FillFailed):
    """A fill planned from a manifest's size found another size in the backend (before any reader was told it)."""


async def stream_direct(
    upstream: Upstream, budget: ConnectionBudget, key: BlobKey, start: int, end: int, whole: bool
) -> AsyncIterator[bytes]:
    """Bytes ``[start, end)`` of the blob at `key` straight from the backend, on one connection of the node's
    budget. A whole-blob read is hashed as it passes and its last chunk is held back until the digest matches,
    so a corrupt blob is never a successful transfer."""
    digest = key.digest
    hasher = digests.hasher(digest) if whole else None
    held = b""
    owner = object()
    await budget.acquire(owner, lambda: True)
    try:
        async for chunk in upstream.read_range(key, start, end):
            if hasher is None:
                yield chunk
                continue
            hasher.update(chunk)
            if held:
                yield held
            held = chunk
    except (BackendError, NotFound) as error:
        raise FillFailed(f"streaming {digest} from the backend: {error}") from error
    finally:
        budget.release(owner)
    if hasher is not None:
        try:
            digests.check(digest, hasher.hexdigest(), "backend content")
        except digests.DigestMismatch as mismatch:
            metrics.fills.labels("digest_mismatch").inc()
            raise FillFailed(str(mismatch)) from mismatch
        yield held
