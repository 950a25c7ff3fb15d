"""Gzip'd tar layers of pseudo-random bytes, built fast and deterministically.

A layer is a tar holding one regular file of pseudo-random bytes (SHAKE-128 in counter mode, keyed) of the
requested size, gzip-compressed at level 1. Random bytes are incompressible, so the deflate runs Huffman-only (no
match search: the same size, about 4x faster than zlib's default strategy, which manages only ~25 MB/s on random
data here) and in parallel pieces, each ending on a byte-aligned sync flush, joined into one ordinary
single-member gzip stream (the pigz technique). A 200 MiB layer takes 4-8 s on this 2-vCPU machine (vs ~16 s
with zlib level 1 defaults).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tarfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

PIECE = 4 << 20  # uncompressed bytes per independently compressed piece
COMPRESS_LEVEL = 1


def _random_pieces(key: bytes, size: int) -> Iterator[bytes]:
    """`size` deterministic pseudo-random bytes for `key`, in pieces of at most PIECE bytes."""
    counter = 0
    while size > 0:
        piece = min(PIECE, size)
        yield hashlib.shake_128(key + counter.to_bytes(8, "big")).digest(piece)
        size -= piece
        counter += 1


def _tar_stream(name: str, size: int, key: bytes) -> Iterator[bytes]:
    """The uncompressed tar of one regular file `name` holding `size` random bytes, in pieces."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    yield from _random_pieces(key, size)
    yield b"\0" * ((512 - size % 512) % 512 + 1024)  # pad the member, then the two end-of-archive blocks


def _deflate(data: bytes, final: bool) -> bytes:
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15, 9, zlib.Z_HUFFMAN_ONLY)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def write_layer(layout_dir: Path, name: str, size: int, key: bytes) -> tuple[str, int, str]:
    """A gzip'd tar of one random file, streamed to disk; returns (digest, compressed size, diff_id)."""
    blobs = layout_dir / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    staging = blobs / f".layer-{key.hex()[:16]}.tmp"
    compressed_hash, uncompressed_hash = hashlib.sha256(), hashlib.sha256()
    crc, length = 0, 0
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"  # gzip, deflate, no flags, mtime 0, "fastest", unknown OS
    workers = max(1, min(4, os.cpu_count() or 1))
    with open(staging, "wb") as out, ThreadPoolExecutor(workers) as pool:

        def emit(packed: bytes) -> None:
            compressed_hash.update(packed)
            out.write(packed)

        emit(header)
        pending: deque[Future[bytes]] = deque()
        pieces = _tar_stream(name, size, key)
        current = next(pieces)
        for upcoming in pieces:  # look one piece ahead so the last one is compressed as final
            uncompressed_hash.update(current)
            crc, length = zlib.crc32(current, crc), length + len(current)
            pending.append(pool.submit(_deflate, current, False))
            while len(pending) > 2 * workers:
                emit(pending.popleft().result())
            current = upcoming
        uncompressed_hash.update(current)
        crc, length = zlib.crc32(current, crc), length + len(current)
        pending.append(pool.submit(_deflate, current, True))
        while pending:
            emit(pending.popleft().result())
        emit(struct.pack("<II", crc & 0xFFFFFFFF, length & 0xFFFFFFFF))
    digest = compressed_hash.hexdigest()
    final = blobs / digest
    staging.replace(final)
    return f"sha256:{digest}", final.stat().st_size, f"sha256:{uncompressed_hash.hexdigest()}"
