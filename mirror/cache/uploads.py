"""Blob uploads written straight to the shared backend, with their state kept in the backend too.

A session's bytes go into one multipart upload of ``_uploads/<uuid>/data``, in parts of ``upload.part_size``
gathered in an anonymous spool file (so a 64 MiB part costs page cache, not memory).
What is left after a request and too small to be a part (S3 wants ≥ 5 MiB for all but the last) is saved as a
``tail`` object and prepended to the next chunk. The ``state`` object (multipart id, parts, offset) lets the next
PATCH or the final PUT land on any edge behind a load balancer. Memory per request is a few request-body chunks.

The sha256 is computed while bytes pass through this process; when a session's chunks went through several
edges the committed data is re-read (streamed) to verify it. Nothing becomes visible under ``blobs/`` before the
digest matches; the commit is a server-side copy (CopyObject), never UploadPartCopy, which Storj lacks.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import AsyncIterator, BinaryIO

import orjson

from mirror import errors, layout, metrics
from mirror.cache.links import LinkCache
from mirror.config import UploadConfig
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Upstream

MIN_PART = 5 * 1024 * 1024
STATE_MAX_SIZE = 1024 * 1024
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class UploadState:
    id: str
    offset: int = 0
    multipart_id: str | None = None
    parts: list[list] = field(default_factory=list)  # [number, etag, size]
    tail: int = 0


class Uploads:
    def __init__(self, upstream: Upstream, links: LinkCache, settings: UploadConfig, spool_directory: Path) -> None:
        self._spool_directory = spool_directory
        spool_directory.mkdir(parents=True, exist_ok=True)
        self._upstream = upstream
        self._links = links
        self._settings = settings
        # upload id → (offset covered, running hash) for sessions whose every byte passed through here
        self._hashes: dict[str, tuple[int, "hashlib._Hash"]] = {}

    async def start(self, name: str) -> UploadState:
        state = UploadState(id=uuid.uuid4().hex)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat().encode()
        await self._backend(self._upstream.put(layout.upload_started_at(name, state.id), started))
        await self._save(name, state)
        self._hashes[state.id] = (0, hashlib.sha256())
        return state

    async def status(self, name: str, upload_id: str) -> UploadState:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise _unknown_upload(upload_id)
        try:
            data = await self._upstream.read(layout.upload_state(name, upload_id), STATE_MAX_SIZE)
        except NotFound:
            raise _unknown_upload(upload_id) from None
        except BackendError as error:
            raise _unavailable(error) from error
        return UploadState(**orjson.loads(data))

    async def append(
        self, name: str, upload_id: str, body: AsyncIterator[bytes], start: int | None = None, declared: int | None = None
    ) -> UploadState:
        """Add a chunk at the session's offset; `start` (from Content-Range) must equal that offset."""
        state = await self.status(name, upload_id)
        if start is not None and start != state.offset:
            raise errors.RegistryError(
                errors.RANGE_INVALID,
                f"chunk starts at {start}, but the upload has {state.offset} bytes",
                headers=range_headers(name, state),
            )
        if declared is not None and state.offset + declared > self._settings.max_size:
            raise self._too_large()
        local = self._hashes.pop(upload_id, None)
        hasher = local[1] if local is not None and local[0] == state.offset else None
        spool = self._spool()
        if state.tail:
            spool.write(await self._backend(self._upstream.read(layout.upload_tail(name, upload_id), MIN_PART)))
        received = 0
        part_size = self._settings.part_size
        try:
            async for chunk in body:
                received += len(chunk)
                if state.offset + received > self._settings.max_size:
                    raise self._too_large()
                if hasher is not None:
                    hasher.update(chunk)
                view = memoryview(chunk)
                while spool.tell() + len(view) >= part_size:
                    room = part_size - spool.tell()
                    spool.write(view[:room])
                    view = view[room:]
                    await self._flush_part(name, state, spool)
                    spool.close()
                    spool = self._spool()
                spool.write(view)
            if spool.tell() >= MIN_PART:
                await self._flush_part(name, state, spool)
                spool.close()
                spool = self._spool()
            spool.seek(0)
            buffer = spool.read()
        finally:
            spool.close()
        if buffer or state.tail:
            await self._backend(self._upstream.put(layout.upload_tail(name, upload_id), bytes(buffer)))
        state.tail = len(buffer)
        state.offset += received
        await self._save(name, state)
        if hasher is not None:
            self._hashes[upload_id] = (state.offset, hasher)
        return state

    async def finish(self, name: str, upload_id: str, digest: Digest, body: AsyncIterator[bytes]) -> None:
        """Take the last chunk (may be empty), verify the whole upload against `digest`, publish the blob."""
        state = await self.append(name, upload_id, body)
        local = self._hashes.pop(upload_id, None)
        staged = layout.upload_data(name, upload_id)
        try:
            if state.multipart_id is not None:
                if state.tail:
                    tail = await self._backend(self._upstream.read(layout.upload_tail(name, upload_id), MIN_PART))
                    await self._flush_part(name, state, tail)
                parts = [(number, etag) for number, etag, _ in state.parts]
                await self._backend(self._upstream.complete_multipart(staged, state.multipart_id, parts))
                state.multipart_id = None
            else:
                tail = b""
                if state.tail:
                    tail = await self._backend(self._upstream.read(layout.upload_tail(name, upload_id), MIN_PART))
                await self._backend(self._upstream.put(staged, tail))
            if local is not None and local[0] == state.offset and digest.algorithm == "sha256":
                actual = local[1].hexdigest()
            else:
                actual = await self._hash_object(staged, state.offset, digest.algorithm)
            if actual != digest.hex:
                metrics.uploads.labels("digest_invalid").inc()
                raise errors.RegistryError(
                    errors.DIGEST_INVALID,
                    f"uploaded content hashes to {digest.algorithm}:{actual}, not {digest}",
                    {"digest": str(digest)},
                )
            await self._publish(name, digest, staged, state.offset)
            metrics.uploads.labels("ok").inc()
        finally:
            await self._discard(name, state)

    async def _publish(self, name: str, digest: Digest, staged: str, size: int) -> None:
        target = layout.blob_data(digest)
        try:
            existing = await self._upstream.stat(target)
        except NotFound:
            existing = None
        except BackendError as error:
            raise _unavailable(error) from error
        if existing is None or existing.size != size:
            await self._backend(self._upstream.copy(staged, target, size))
        await self.link(name, digest)

    async def link(self, name: str, digest: Digest) -> None:
        """Put blob `digest` into repository `name` (its ``_layers`` link), as registry:2 does after a push."""
        await self._backend(self._upstream.put(layout.layer_link(name, digest), str(digest).encode()))
        self._links.remember_link(name, "blob", digest)

    async def mount(self, name: str, digest: Digest, source: str) -> bool:
        """Link a blob of repository `source` into `name` without copying bytes; False when `source` lacks it."""
        if not await self._links.is_linked(source, "blob", digest):
            return False
        try:
            await self._upstream.stat(layout.blob_data(digest))
        except NotFound:
            return False
        except BackendError as error:
            raise _unavailable(error) from error
        await self.link(name, digest)
        return True

    async def cancel(self, name: str, upload_id: str) -> None:
        state = await self.status(name, upload_id)
        self._hashes.pop(upload_id, None)
        await self._discard(name, state)

    async def _discard(self, name: str, state: UploadState) -> None:
        if state.multipart_id is not None:
            await self._upstream.abort_multipart(layout.upload_data(name, state.id), state.multipart_id)
        for key in (
            layout.upload_data(name, state.id),
            layout.upload_tail(name, state.id),
            layout.upload_state(name, state.id),
            layout.upload_started_at(name, state.id),
        ):
            try:
                await self._upstream.delete(key)
            except BackendError:
                pass  # an orphan under _uploads/ is harmless; registry:2's upload purger removes old ones

    def _spool(self) -> BinaryIO:
        """A part is gathered in an anonymous file, not in memory: a 64 MiB part costs page cache, not RSS."""
        return tempfile.TemporaryFile(dir=self._spool_directory)

    async def _flush_part(self, name: str, state: UploadState, part: BinaryIO | bytes) -> None:
        staged = layout.upload_data(name, state.id)
        if state.multipart_id is None:
            state.multipart_id = await self._backend(self._upstream.start_multipart(staged))
        number = len(state.parts) + 1
        if isinstance(part, bytes):
            size = len(part)
        else:
            size = part.tell()
            part.seek(0)
        etag = await self._backend(self._upstream.put_part(staged, state.multipart_id, number, part, size))
        state.parts.append([number, etag, size])

    async def _hash_object(self, key: str, size: int, algorithm: str) -> str:
        hasher = hashlib.new(algorithm)
        if size:
            try:
                async for chunk in self._upstream.read_range(key, 0, size):
                    hasher.update(chunk)
            except (NotFound, BackendError) as error:
                raise _unavailable(error) from error
        return hasher.hexdigest()

    async def _save(self, name: str, state: UploadState) -> None:
        await self._backend(self._upstream.put(layout.upload_state(name, state.id), orjson.dumps(asdict(state))))

    def _too_large(self) -> errors.RegistryError:
        metrics.uploads.labels("too_large").inc()
        return errors.RegistryError(
            errors.DENIED, f"upload exceeds this mirror's limit of {self._settings.max_size} bytes", status=413
        )

    @staticmethod
    async def _backend(awaitable):  # type: ignore[no-untyped-def]
        try:
            return await awaitable
        except (NotFound, BackendError) as error:
            raise _unavailable(error) from error


def range_headers(name: str, state: UploadState) -> dict[str, str]:
    """Location, Range and Docker-Upload-UUID, as registry:2 sends them for an upload in progress."""
    return {
        "Location": f"/v2/{name}/blobs/uploads/{state.id}",
        "Range": f"0-{max(state.offset - 1, 0)}",
        "Docker-Upload-UUID": state.id,
    }


def _unknown_upload(upload_id: str) -> errors.RegistryError:
    return errors.RegistryError(errors.BLOB_UPLOAD_UNKNOWN, f"upload {upload_id!r} is not known", {"uuid": upload_id})


def _unavailable(error: Exception) -> errors.RegistryError:
    return errors.RegistryError(errors.UNAVAILABLE, f"storage backend unavailable: {error}")
