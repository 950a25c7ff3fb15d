"""The content store: verified blobs and manifests as files on local disk, indexed by digest.

diskcache is the index. It owns the files, accounts their bytes and records every access; we evict the least
recently used entry one at a time down to ``cache.size`` (diskcache's own cull drops ten entries per step, far
too coarse when entries are gigabyte blobs). A fill writes its bytes into a partial file under ``partial/`` (same filesystem),
and `commit` moves that file into diskcache's directory with a rename (no copy) through `_CommittingDisk`.

Eviction unlinks files; a reader holding an open descriptor keeps reading the whole file (POSIX unlink
semantics), so eviction never tears a response in flight.

One cache directory belongs to one process: the store holds an exclusive ``flock`` on ``<dir>/lock`` while open
(start-up deletes leftover partial files, which would be another live process's fills otherwise). The kernel
drops the lock when the process dies, even on SIGKILL, so a restart after a crash finds it free.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import diskcache

from mirror import metrics
from mirror.cache import diskindex
from mirror.config import ConfigError
from mirror.reference import Digest

log = logging.getLogger(__name__)

LOCK_FILE = "lock"

# Locks this process holds, by directory: [descriptor, users]. flock conflicts between two descriptors of one
# process too, so the CLI's early check and the store share one descriptor.
_held_locks: dict[str, list[int]] = {}


class ContentTooLarge(Exception):
    """The cached content is larger than the caller is willing to hold in memory."""


def lock_cache_dir(directory: Path) -> None:
    """Take (or share, within this process) the exclusive lock on cache directory `directory`.

    Raises ConfigError naming ``cache.dir`` when another process holds it or the directory cannot be made.
    """
    key = os.path.realpath(directory)
    held = _held_locks.get(key)
    if held is not None:
        held[1] += 1
        return
    path = Path(directory) / LOCK_FILE
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError("cache.dir", f"cannot use {directory}: {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            "cache.dir", f"{directory} is in use by another edge-mirror process (pid {holder}); give each its own"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held_locks[key] = [fd, 1]


def unlock_cache_dir(directory: Path) -> None:
    """Release one use of the lock taken by `lock_cache_dir`; the last one closes it."""
    key = os.path.realpath(directory)
    held = _held_locks.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _held_locks[key]
        os.close(held[0])


@dataclass(frozen=True)
class _VerifiedFile:
    """A file whose bytes were verified against its digest, to be moved into the index."""

    path: Path
    size: int


class _CommittingDisk(diskcache.Disk):
    """A diskcache Disk that adopts a verified file by renaming it, instead of copying it."""

    def store(
        self, value: object, read: bool, key: object = diskcache.core.UNKNOWN
    ) -> tuple[int, int, str | None, object]:
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
        lock_cache_dir(self.directory)
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
        self._remove_orphans()
        self._record_size()

    def _remove_orphans(self) -> None:
        """Delete content files the index does not know. A crash between a commit's rename and its index row
        leaves one: never served, but it would take disk that ``cache.size`` does not count."""
        known = diskindex.stored_filenames(self._index)
        root = self.directory / "content"
        for path in root.rglob("*.val"):
            if str(path.relative_to(root)) not in known:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        self._index.close()
        unlock_cache_dir(self.directory)

    def contains(self, digest: Digest) -> bool:
        """Whether `digest` is cached (without counting it as a use)."""
        return str(digest) in self._index

    def open(self, digest: Digest) -> CachedFile | None:
        """Open the content for `digest` (and mark it recently used), or None when not cached (or the index
        cannot be read or updated: a full disk)."""
        try:
            handle = self._index.get(str(digest), read=True)
        except (OSError, sqlite3.Error):
            return None
        if handle is None:
            return None
        fd = os.dup(handle.fileno())
        handle.close()
        return CachedFile(fd=fd, size=os.fstat(fd).st_size)

    def read_small(self, digest: Digest, limit: int) -> bytes | None:
        """The whole content for `digest` (for manifests, which are small), or None when not cached.

        Raises ContentTooLarge, without reading, when the content is larger than `limit` bytes.
        """
        cached = self.open(digest)
        if cached is None:
            return None
        try:
            if cached.size > limit:
                raise ContentTooLarge(f"{digest} is {cached.size} bytes, more than {limit}")
            return os.pread(cached.fd, cached.size, 0)
        finally:
            cached.close()

    def new_partial_path(self) -> Path:
        """A fresh path for a fill to write into; it lives on the store's filesystem so commit is a rename."""
        return self.partial_directory / f"{uuid.uuid4().hex}.partial"

    def commit(self, digest: Digest, path: Path, size: int) -> bool:
        """Adopt the verified file at `path` as the content of `digest`, then evict down to the size limit.
        False when the disk refuses the index entry (the caller serves the blob uncached)."""
        return self._record(digest, _VerifiedFile(path=path, size=size))

    def put_bytes(self, digest: Digest, data: bytes) -> bool:
        """Store small verified content (a manifest) given as bytes; False when the disk refuses it (the caller
        serves it anyway)."""
        return self._record(digest, data)

    def _record(self, digest: Digest, value: object) -> bool:
        """A full cache disk (ENOSPC, or SQLite's "database or disk is full") must not turn content that was
        verified into an error: it is logged, counted as ``no_disk``, and not cached."""
        try:
            self._index.set(str(digest), value)
        except (OSError, sqlite3.Error) as error:
            log.warning("not caching %s: %s", digest, error)
            metrics.fill_uncached.labels("no_disk").inc()
            return False
        self._evict()
        return True

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
            oldest = diskindex.least_recently_used(self._index)
            if oldest is None:
                break
            if self._index.delete(oldest):
                metrics.cache_evictions.inc()
        self._record_size()

    def _record_size(self) -> None:
        metrics.cache_size_bytes.set(self._index.volume())

    def volume(self) -> int:
        """Bytes the index accounts for: content files plus its own database."""
        return self._index.volume()
