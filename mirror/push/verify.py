"""Digest verification for pushes, in one place: a pushed blob or manifest is published only if its bytes hash
to the digest the client named."""

from __future__ import annotations

import hashlib

from mirror import metrics
from mirror.reference import Digest
from mirror.upstream import BackendError, Reader
from mirror.domain import Invalid, Unavailable


def check(digest: Digest, actual_hex: str) -> None:
    """DIGEST_INVALID (and counted) unless `actual_hex` is `digest`'s hex."""
    if actual_hex != digest.hex:
        metrics.uploads.labels("digest_invalid").inc()
        raise Invalid(
            "digest",
            f"uploaded content hashes to {digest.algorithm}:{actual_hex}, not {digest}",
            {"digest": str(digest)},
        )


def check_bytes(digest: Digest, data: bytes) -> None:
    check(digest, hashlib.new(digest.algorithm, data).hexdigest())


async def check_object(reader: Reader, key: str, size: int, digest: Digest) -> None:
    """Stream the stored object at `key` back and check it against `digest` (when the running hash cannot be
    trusted: chunks went through other edges, or the session was finished elsewhere)."""
    hasher = hashlib.new(digest.algorithm)
    if size:
        try:
            async for chunk in reader.read_range(key, 0, size):
                hasher.update(chunk)
        except BackendError as error:  # NotFound passes: the session vanished, the caller asks why
            raise Unavailable.of(error) from error
    check(digest, hasher.hexdigest())
