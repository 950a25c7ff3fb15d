"""The embedded default backend: the registry:2 layout in a local directory.

This is exactly what registry:2's filesystem driver writes, so pointing `rootdirectory` at a registry:2
filesystem root serves that registry's images.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import hashlib
import io
import os
import shutil
import uuid
from pathlib import Path
from typing import AsyncIterator, BinaryIO, Callable, ParamSpec

from mirror.upstream.base import STREAM_CHUNK, BackendError, Listing, MultipartUpload, NotFound, ObjectInfo, TooLarge

P = ParamSpec("P")

_MISSING = (errno.ENOENT, errno.ENOTDIR)
_DIRECTORY_RACE_ATTEMPTS = 5


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

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        size = (await self.stat(key)).size
        return size, self.read_range(key, 0, min(length, size))

    async def read_last(self, key: str, length: int) -> tuple[int, int, AsyncIterator[bytes]]:
        size = (await self.stat(key)).size
        start = max(0, size - length)
        return size, start, self.read_range(key, start, size)

    async def list(self, directory: str) -> Listing:
        def scan() -> Listing:
            listing = Listing()
            try:
                with os.scandir(self._path(directory)) as entries:
                    listing.present = True
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue  # our own temporary files and multipart parts
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


    # -- writes: atomic renames, and multipart as numbered part files ----------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        await self._guard(key, _write_atomically, self._path(key), lambda staging: staging.write_bytes(data))

    async def delete(self, key: str) -> None:
        def remove() -> None:
            self._path(key).unlink(missing_ok=True)

        await self._guard(key, remove)

    async def delete_tree(self, directory: str) -> None:
        def remove_tree() -> None:
            """Delete every object found, as S3 deletes what a listing returned: an object put while this runs
            may stay (its directory with it), which is not an error."""
            for path, _, files in os.walk(self._path(directory), topdown=False):
                for file in files:
                    Path(path, file).unlink(missing_ok=True)
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass
                except OSError as error:
                    if error.errno != errno.ENOTEMPTY:
                        raise

        await self._guard(directory, remove_tree)

    async def copy(self, source: str, destination: str, size: int) -> None:
        origin = self._path(source)
        await self._guard(destination, _write_atomically, self._path(destination), lambda staging: shutil.copyfile(origin, staging))

    # A multipart upload is a directory ``.multipart-<id>`` beside its key, holding the key's name in ``.key`` and
    # one file per part named ``<number>-<md5 of the part>``: the ETag is the content's MD5, as S3 makes it.

    def _parts_directory(self, key: str, upload_id: str) -> Path:
        return self._path(key).parent / f".multipart-{upload_id}"

    async def start_multipart(self, key: str) -> str:
        upload_id = uuid.uuid4().hex

        def create() -> None:
            directory = self._parts_directory(key, upload_id)
            directory.mkdir(parents=True)
            (directory / ".key").write_text(key)

        await self._guard(key, create)
        return upload_id

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        directory = self._parts_directory(key, upload_id)

        def write_part() -> str:
            if not directory.is_dir():
                raise NotFound(f"{key}: no multipart upload {upload_id}")
            source = io.BytesIO(body) if isinstance(body, bytes) else body
            staging = directory / f".{uuid.uuid4().hex}.tmp"
            digest = hashlib.md5(usedforsecurity=False)
            try:
                with open(staging, "wb") as out:
                    for left in range(size, 0, -STREAM_CHUNK):  # `size` bytes: a reused spool holds more after them
                        chunk = source.read(min(STREAM_CHUNK, left))
                        if len(chunk) != min(STREAM_CHUNK, left):
                            raise OSError(f"part {number} ended after {size - left + len(chunk)} of {size} bytes")
                        digest.update(chunk)
                        out.write(chunk)
            except BaseException:
                staging.unlink(missing_ok=True)
                raise
            etag = digest.hexdigest()
            os.replace(staging, directory / f"{number:05d}-{etag}")
            for other in directory.glob(f"{number:05d}-*"):
                if other.name != f"{number:05d}-{etag}":
                    other.unlink(missing_ok=True)
            return f'"{etag}"'

        try:
            return await asyncio.to_thread(write_part)
        except OSError as error:
            raise _translate(error, key) from error

    async def list_parts(self, key: str, upload_id: str) -> dict[int, str]:
        directory = self._parts_directory(key, upload_id)

        def scan() -> dict[int, str]:
            if not directory.is_dir():
                raise NotFound(f"{key}: no multipart upload {upload_id}")
            held = {}
            for entry in directory.iterdir():
                number, _, etag = entry.name.partition("-")
                if number.isdigit():
                    held[int(number)] = f'"{etag}"'
            return held

        try:
            return await asyncio.to_thread(scan)
        except OSError as error:
            raise _translate(error, key) from error

    async def complete_multipart(self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]) -> None:
        directory = self._parts_directory(key, upload_id)

        def assemble() -> None:
            # Claim the upload with one rename, so of two completions racing, one assembles and the other finds
            # no upload (NoSuchUpload, as S3 answers it) instead of parts vanishing under it.
            claimed = directory.with_name(f".completing-{upload_id}-{uuid.uuid4().hex}")
            try:
                os.rename(directory, claimed)
            except FileNotFoundError:
                raise NotFound(f"{key}: no multipart upload {upload_id}") from None
            target = self._path(key)
            staging = target.with_name(f".{uuid.uuid4().hex}.tmp")
            try:
                with open(staging, "wb") as out:
                    for number, etag in parts:
                        part = claimed / f"{number:05d}-{etag.strip(chr(34))}"
                        if not part.is_file():
                            raise BackendError(f"{key}: part {number} with ETag {etag} is not held (InvalidPart)")
                        with open(part, "rb") as source:
                            shutil.copyfileobj(source, out, STREAM_CHUNK)
                os.replace(staging, target)
            except BaseException:
                os.rename(claimed, directory)  # the upload stays open, as S3 keeps it after a failed completion
                raise
            finally:
                staging.unlink(missing_ok=True)
            shutil.rmtree(claimed, ignore_errors=True)

        await self._guard(key, assemble)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._parts_directory(key, upload_id), True)

    async def multipart_uploads(self, prefix: str) -> builtins.list[MultipartUpload]:
        def scan() -> list[MultipartUpload]:
            found = []
            for directory, subdirectories, _ in os.walk(self._path(prefix)):
                for child in subdirectories:
                    if child.startswith(".multipart-"):
                        marker = Path(directory, child, ".key")
                        upload_id = child[len(".multipart-"):]
                        try:
                            found.append(MultipartUpload(marker.read_text(), upload_id, marker.stat().st_mtime))
                        except OSError:
                            continue  # completed or aborted while we looked
            return found

        return await asyncio.to_thread(scan)

    @staticmethod
    async def _guard(key: str, function: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await asyncio.to_thread(function, *args, **kwargs)
        except OSError as error:
            raise _translate(error, key) from error


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Have `write` fill a temporary file beside `path`, then rename it there, so readers never see half an object.

    Directories are an artefact of this backend, not of the object store it stands for: a `delete_tree` running
    at the same time may remove the parent between mkdir and rename, so that is retried (`write` runs again),
    as a put to S3 would simply succeed."""
    for attempt in range(_DIRECTORY_RACE_ATTEMPTS):
        staging = path.with_name(f".{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(staging)
            os.replace(staging, path)
            return
        except (FileNotFoundError, FileExistsError):
            staging.unlink(missing_ok=True)
            if attempt == _DIRECTORY_RACE_ATTEMPTS - 1:
                raise


def _translate(error: OSError, key: str) -> Exception:
    if error.errno in _MISSING:
        return NotFound(key)
    return BackendError(f"{key}: {error.strerror}")
