"""A part's bytes on their way to S3 from the file they were spooled to, read in large pieces.

Handed to botocore as a file, a part is read twice and in small pieces: botocore hashes it for the signature
(unless payload signing is off) and aiohttp reads it back 64 KiB at a time, each read a trip to a thread. This
body is what aiohttp streams instead (an async iterable): ``os.pread`` of 1 MiB at a time, from the position the
file had when the part was handed over, so a retry (botocore rewinds with ``seek(0)``) sends the same bytes again.
The reads run on the event loop, as the spool's writes do: the part was just written, so they copy from the page
cache (~0.1 ms per MiB), cheaper than a trip to a thread. ``read`` exists for botocore's parameter check (a blob
is bytes or has ``read``) and for the payload's sha256 when the part is signed (plain-HTTP endpoints).
"""

from __future__ import annotations

import os
from typing import AsyncIterator, BinaryIO

PIECE = 1024 * 1024


class FilePart:
    """`size` bytes of `file` from its current position, streamed by `__aiter__` (each iteration from the start)."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._fd = file.fileno()
        self._start = file.tell()
        self._size = size
        self._position = 0  # of `read`, relative to the part's start

    def __len__(self) -> int:
        return self._size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self._size:
            piece = os.pread(self._fd, min(PIECE, self._size - sent), self._start + sent)
            if not piece:
                raise OSError(f"spooled part ended after {sent} of {self._size} bytes")
            sent += len(piece)
            yield piece

    def read(self, size: int = -1) -> bytes:
        left = self._size - self._position
        data = os.pread(self._fd, left if size < 0 else min(size, left), self._start + self._position)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position
