"""What this process keeps of the upload sessions whose bytes passed through it: the running sha256 and the tail
(the bytes after the last whole part), each bound to the nonce of the state it belongs to. Both are shortcuts
only: a missing or stale entry means re-reading the data from the backend (see `mirror.push.uploads`)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

# Running hashes of sessions whose every byte passed through this process; an abandoned session's entry is
# dropped when this many newer ones exist.
LOCAL_HASHES = 1024
# Tails (< 5 MiB each) of sessions whose last chunk came through this process, kept in memory up to this many
# bytes in all: the finish takes them from here instead of reading them back from the backend (a tail's object is
# named by its state's nonce, so a kept tail is exactly the stored one; any other state reads it from the backend).
LOCAL_TAIL_BYTES = 64 * 1024 * 1024


class KeptCopies:
    """Least recently used first out: the hashes by count, the tails by their bytes in all."""

    def __init__(self) -> None:
        self._hashes: OrderedDict[str, tuple[str, "hashlib._Hash"]] = OrderedDict()
        self._tails: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._tail_bytes = 0

    def hash(self, upload_id: str, nonce: str) -> "hashlib._Hash | None":
        """The running hash kept for the state with `nonce` (None when none is, or it is another state's)."""
        kept = self._hashes.get(upload_id)
        return kept[1] if kept is not None and kept[0] == nonce else None

    def keep_hash(self, upload_id: str, nonce: str, hasher: "hashlib._Hash") -> None:
        self._hashes[upload_id] = (nonce, hasher)
        self._hashes.move_to_end(upload_id)
        while len(self._hashes) > LOCAL_HASHES:
            self._hashes.popitem(last=False)

    def tail(self, upload_id: str, nonce: str, size: int) -> bytes | None:
        """The tail kept for the state with `nonce`, if it has `size` bytes."""
        held = self._tails.get(upload_id)
        return held[1] if held is not None and held[0] == nonce and len(held[1]) == size else None

    def keep_tail(self, upload_id: str, nonce: str, tail: bytes) -> None:
        self._forget_tail(upload_id)
        if not tail or len(tail) > LOCAL_TAIL_BYTES:
            return
        self._tails[upload_id] = (nonce, tail)
        self._tail_bytes += len(tail)
        while self._tail_bytes > LOCAL_TAIL_BYTES:
            self._tail_bytes -= len(self._tails.popitem(last=False)[1][1])

    def forget(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        self._forget_tail(upload_id)

    def _forget_tail(self, upload_id: str) -> None:
        kept = self._tails.pop(upload_id, None)
        if kept is not None:
            self._tail_bytes -= len(kept[1])
