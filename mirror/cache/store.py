"""The content store: verified blobs and manifests as files on local disk, indexed by digest.

diskcache is the index. It owns the files, accounts their bytes and records every access; we evict the least
recently used entry one at a time down to ``cache.size`` (diskcache's own cull drops ten entries per step, far
too coarse when entries are gigabyte blobs). A fill writes its bytes into a partial file under ``partial/`` (same filesystem),
and `commit` moves that file into diskcache's directory with a rename (no copy) through `_CommittingDisk`.

Eviction unlinks files; a reader holding an open descriptor keeps reading the whole file (POSIX unlink
semantics), so eviction never tears a response in flight.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import diskcache

from mirror import metrics
from mirror.reference import Digest


@dataclass(frozen=True)
class _VerifiedFile:
    """A file whose bytes were verified against its digest, to be moved into the index."""

    path: Path
    size: int


class _CommittingDisk(diskcache.Disk):
    """A diskcache Disk that adopts a verified file by renaming it, instead of copying it."""

    def store(self, value, read, key=diskcache.core.UNKNOWN):  # type: ignore[no-untyped-def]
        if isinstance(value, _VerifiedFile):
            filename, full_path = self.filename(key, value)
            os.makedirs(os.path.dirname(full_path), exist_ok=True)
            os.rename(value.path, full_path)
            return value.size, diskcache.core.MODE_BINARY, filename, None
        return super().store(value, read, key)


@dataclass
class CachedFile:
    """An open, verified content file. Close it when done."""

    fd: int
    size: int

    def close(self) -> None:
        os.close(self.fd)


class ContentStore:
    """Content-addressed files with least-recently-used eviction bounded by bytes."""

    def __init__(self, directory: Path, size_limit: int) -> None:
        self.directory = Path(directory)
        self.partial_directory = self.directory / "partial"
        self.partial_directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.partial_directory.iterdir():
            leftover.unlink(missing_ok=True)
        self.size_limit = size_limit
        self._index = diskcache.Cache(
            str(self.directory / "content"),
            size_limit=size_limit,
            eviction_policy="least-recently-used",
            cull_limit=0,
            disk=_CommittingDisk,
            disk_min_file_size=0,
        )
        self._record_size()

    def close(self) -> None:
        self._index.close()

    def open(self, digest: Digest) -> CachedFile | None:
        """Open the content for `digest` (and mark it recently used), or None when not cached."""
        try:
            handle = self._index.get(str(digest), read=True)
        except OSError:
            return None
        if handle is None:
            return None
        fd = os.dup(handle.fileno())
        handle.close()
        return CachedFile(fd=fd, size=os.fstat(fd).st_size)

    def read_small(self, digest: Digest) -> bytes | None:
        """The whole content for `digest` (for manifests, which are small), or None."""
        cached = self.open(digest)
        if cached is None:
            return None
        try:
            return os.pread(cached.fd, cached.size, 0)
        finally:
            cached.close()

    def new_partial_path(self) -> Path:
        """A fresh path for a fill to write into; it lives on the store's filesystem so commit is a rename."""
        return self.partial_directory / f"{uuid.uuid4().hex}.partial"

    def commit(self, digest: Digest, path: Path, size: int) -> None:
        """Adopt the verified file at `path` as the content of `digest`, then evict down to the size limit."""
        self._index.set(str(digest), _VerifiedFile(path=path, size=size))
        self._evict()

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        """Store small verified content (a manifest) given as bytes."""
        self._index.set(str(digest), data)
        self._evict()

    def discard(self, digest: Digest) -> bool:
        """Drop the content for `digest` (``edge-mirror purge``); readers holding it open finish their read."""
        dropped = bool(self._index.delete(str(digest)))
        self._record_size()
        return dropped

    def make_room(self, claimed: int) -> None:
        """Evict until the content plus `claimed` bytes (partial files of running fills) fit in the size limit."""
        self._evict(self.size_limit - claimed)

    def _evict(self, limit: int | None = None) -> None:
        limit = self.size_limit if limit is None else limit
        while self._index.volume() > limit:
            oldest = self._least_recently_used()
            if oldest is None:
                break
            if self._index.delete(oldest):
                metrics.cache_evictions.inc()
        self._record_size()

    def _least_recently_used(self) -> str | None:
        # diskcache keeps access_time current under the least-recently-used policy but offers no public
        # "oldest key" query; its Cache table is a documented, stable schema.
        rows = self._index._sql("SELECT key FROM Cache ORDER BY access_time LIMIT 1").fetchall()
        return rows[0][0] if rows else None

    def _record_size(self) -> None:
        metrics.cache_size_bytes.set(self._index.volume())

    def volume(self) -> int:
        """Bytes the index accounts for: content files plus its own database."""
        return self._index.volume()
