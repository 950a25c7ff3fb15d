"""The one digest check: bytes are taken under a digest only if they hash to it, wherever they came from (a
client's push, the bucket, a remote registry, a peer).

A mismatch is always `DigestMismatch`. What it means is the caller's to say, at its own boundary: the bytes of
a push are the client's fault (DIGEST_INVALID), the bytes of a fill or a remote manifest are the source's
(the fill fails, the backend is unavailable).
"""

from __future__ import annotations

import hashlib

from mirror.reference import Digest


class DigestMismatch(Exception):
    """Bytes named by `digest` hash to `actual` instead."""

    def __init__(self, digest: Digest, actual_hex: str, what: str = "content") -> None:
        self.digest = digest
        self.actual = Digest(digest.algorithm, actual_hex)
        super().__init__(f"{what} hashes to {self.actual}, not {digest}")


def hasher(digest: Digest, data: bytes = b"") -> "hashlib._Hash":
    """A running hash of `digest`'s algorithm (over `data` so far), for bytes that arrive in pieces; `check`
    its hexdigest when they are all in."""
    return hashlib.new(digest.algorithm, data)


def check(digest: Digest, actual_hex: str, what: str = "content") -> None:
    """Raise `DigestMismatch` unless `actual_hex` (a hash of `digest`'s algorithm) is `digest`'s hex."""
    if actual_hex != digest.hex:
        raise DigestMismatch(digest, actual_hex, what)


def check_bytes(digest: Digest, data: bytes, what: str = "content") -> None:
    """Raise `DigestMismatch` unless `data` hashes to `digest`."""
    check(digest, hasher(digest, data).hexdigest(), what)
