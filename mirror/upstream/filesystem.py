"""The embedded default backend: the registry:2 layout in a local directory.

This is exactly what registry:2's filesystem driver writes, so pointing `rootdirectory` at a registry:2
filesystem root serves that registry's images.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import AsyncIterator

from mirror.upstream.base import STREAM_CHUNK, BackendError, Listing, NotFound, ObjectInfo, TooLarge

_MISSING = (errno.ENOENT, errno.ENOTDIR)


class FilesystemUpstream:
    name = "filesystem"

    def __init__(self, rootdirectory: Path) -> None:
        self.root = Path(rootdirectory)

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        return self.root / key

    async def probe(self) -> None:
        if not await asyncio.to_thread(self.root.is_dir):
            raise BackendError(f"root directory {self.root} is not a directory")

    async def stat(self, key: str) -> ObjectInfo:
        try:
            result = await asyncio.to_thread(os.stat, self._path(key))
        except OSError as error:
            raise _translate(error, key) from error
        return ObjectInfo(size=result.st_size)

    async def read(self, key: str, max_size: int) -> bytes:
        def read_capped() -> bytes:
            with open(self._path(key), "rb") as file:
                data = file.read(max_size + 1)
            if len(data) > max_size:
                raise TooLarge(f"{key} is larger than {max_size} bytes")
            return data

        try:
            return await asyncio.to_thread(read_capped)
        except OSError as error:
            raise _translate(error, key) from error

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            fd = await asyncio.to_thread(os.open, self._path(key), os.O_RDONLY)
        except OSError as error:
            raise _translate(error, key) from error
        try:
            position = start
            while position < end:
                chunk = await asyncio.to_thread(os.pread, fd, min(STREAM_CHUNK, end - position), position)
                if not chunk:
                    raise BackendError(f"{key} ended at {position}, before the requested end {end}")
                position += len(chunk)
                yield chunk
        except OSError as error:
            raise _translate(error, key) from error
        finally:
            os.close(fd)

    async def list(self, directory: str) -> Listing:
        def scan() -> Listing:
            listing = Listing()
            try:
                with os.scandir(self._path(directory)) as entries:
                    for entry in entries:
                        (listing.directories if entry.is_dir() else listing.files).append(entry.name)
            except OSError as error:
                if error.errno in _MISSING:
                    return listing
                raise
            listing.directories.sort()
            listing.files.sort()
            return listing

        try:
            return await asyncio.to_thread(scan)
        except OSError as error:
            raise _translate(error, directory) from error


def _translate(error: OSError, key: str) -> Exception:
    if error.errno in _MISSING:
        return NotFound(key)
    return BackendError(f"{key}: {error.strerror}")
