"""Rendezvous (highest-random-weight) hashing: which edge of the region owns a digest.

Every edge scores every live edge for a digest and picks the highest score. All edges that see the same live set
agree without talking to each other, and when an edge joins or leaves, only the digests it owns (or comes to
own) move: nothing else is reshuffled, so the region's caches stay useful through restarts and scale-ups.
"""

from __future__ import annotations

import hashlib
from typing import Iterable


def score(peer: str, digest: str) -> int:
    """A pseudo-random weight of `peer` for `digest` (the first 8 bytes of a blake2b of both)."""
    hashed = hashlib.blake2b(f"{peer}\n{digest}".encode(), digest_size=8).digest()
    return int.from_bytes(hashed, "big")


def owner(digest: str, peers: Iterable[str]) -> str | None:
    """The peer with the highest score for `digest` (ties broken by address), or None when there are none."""
    best: tuple[int, str] | None = None
    for peer in peers:
        candidate = (score(peer, digest), peer)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]
