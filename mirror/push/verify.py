"""Digest verification for pushes: a pushed blob is published only if its bytes hash to the digest the client
named. The check itself is `mirror.digests`; here a mismatch is the client's (DIGEST_INVALID, counted)."""

from __future__ import annotations

from mirror import digests, metrics
from mirror.reference import Digest
from mirror.upstream import BackendError, Reader
from mirror.domain import Invalid, Unavailable


def check(digest: Digest, actual_hex: str) -> None:
    """DIGEST_INVALID (and counted) unless `actual_hex` is `digest`'s hex."""
    try:
        digests.check(digest, actual_hex, "uploaded content")
    except digests.DigestMismatch as mismatch:
        metrics.uploads.labels("digest_invalid").inc()
        raise Invalid("digest", str(mismatch), {"digest": str(digest)}) from None


def check_bytes(digest: Digest, data: bytes) -> None:
    check(digest, digests.hasher(digest, data).hexdigest())


async def check_object(reader: Reader, key: str, size: int, digest: Digest) -> None:
    """Stream the stored object at `key` back and check it against `digest` (when the running hash cannot be
    trusted: chunks went through other edges, or the session was finished elsewhere)."""
    hasher = digests.hasher(digest)
    if size:
        try:
            async for chunk in reader.read_range(key, 0, size):
                hasher.update(chunk)
        except BackendError as error:  # NotFound passes: the session vanished, the caller asks why
            raise Unavailable.of(error) from error
    check(digest, hasher.hexdigest())
