"""Blob uploads written straight to the shared backend, with their state kept in the backend too.

A session's bytes go into one multipart upload of ``_uploads/<uuid>/data``, in parts of ``upload.part_size``
gathered in an anonymous spool file (so a 64 MiB part costs page cache, not memory).
What is left after a request and too small to be a part (S3 wants ≥ 5 MiB for all but the last) is saved as a
tail object and prepended to the next chunk. The ``state`` object (multipart id, parts, offset) lets the next
PATCH or the final PUT land on any edge behind a load balancer. Memory per request is a few request-body chunks.

A chunk is all or nothing: its parts take the next part numbers (a retry overwrites them), its tail gets a new
key named by the offset it ends at, and only the final write of ``state`` makes the chunk count. A chunk that
fails half-way (client gone, backend error, wrong length) leaves the session where it was, so the client can
ask for the offset and resend.

The sha256 is computed while bytes pass through this process; when a session's chunks went through several
edges the committed data is re-read (streamed) to verify it. Nothing becomes visible under ``blobs/`` before the
digest matches. A blob that never reached a part (< 5 MiB) is verified in memory and written in place; a larger
one is published by a server-side CopyObject of the completed upload, never UploadPartCopy, which Storj lacks.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import tempfile
import uuid
from collections import OrderedDict
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
MAX_PARTS = 10_000  # S3's limit on parts of one multipart upload
STATE_MAX_SIZE = 1024 * 1024
# Running hashes of sessions whose every byte passed through this process; an abandoned session's entry is
# dropped when this many newer ones exist (it is only a shortcut: a missing hash means re-reading the data).
LOCAL_HASHES = 1024
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class UploadState:
    id: str
    offset: int = 0
    multipart_id: str | None = None
    parts: list[list] = field(default_factory=list)  # [number, etag, size]
    tail: int = 0  # bytes in the tail object that ends at `offset`


class Uploads:
    def __init__(self, upstream: Upstream, links: LinkCache, settings: UploadConfig, spool_directory: Path) -> None:
        self._spool_directory = spool_directory
        spool_directory.mkdir(parents=True, exist_ok=True)
        self._upstream = upstream
        self._links = links
        self._settings = settings
        self._hashes: OrderedDict[str, tuple[int, "hashlib._Hash"]] = OrderedDict()

    async def start(self, name: str) -> UploadState:
        state = UploadState(id=uuid.uuid4().hex)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat().encode()
        await self._backend(self._upstream.put(layout.upload_started_at(name, state.id), started))
        await self._save(name, state)
        self._keep_hash(state.id, 0, hashlib.sha256())
        return state

    async def status(self, name: str, upload_id: str) -> UploadState:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise _unknown_upload(upload_id)
        try:
            data = await self._upstream.read(layout.upload_state(name, upload_id), STATE_MAX_SIZE)
        except NotFound:
            raise _unknown_upload(upload_id) from None
        except BackendError as error:
            raise errors.unavailable(error) from error
        return UploadState(**orjson.loads(data))

    async def append(
        self,
        name: str,
        upload_id: str,
        body: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
        declared: int | None = None,
    ) -> UploadState:
        """Add a chunk at the session's offset.

        `start` and `length` come from Content-Range: the chunk must start at the session's offset (else 416)
        and hold exactly `length` bytes (else SIZE_INVALID, and the chunk does not count). `declared` is the
        Content-Length, checked against the size limit before any byte is read.
        """
        state = await self.status(name, upload_id)
        if start is not None and start != state.offset:
            raise errors.RegistryError(
                errors.RANGE_INVALID,
                f"chunk starts at {start}, but the upload has {state.offset} bytes",
                headers=range_headers(name, state),
            )
        if length is not None and declared is not None and declared != length:
            raise errors.RegistryError(
                errors.SIZE_INVALID, f"Content-Range covers {length} bytes, Content-Length says {declared}"
            )
        if declared is not None and state.offset + declared > self._settings.max_size:
            raise self._too_large()
        local = self._hashes.pop(upload_id, None)
        hasher = local[1] if local is not None and local[0] == state.offset else None
        had_multipart = state.multipart_id is not None
        previous_tail = layout.upload_tail(name, upload_id, state.offset) if state.tail else None
        try:
            received = await self._take_chunk(name, state, body, length, hasher)
        except Exception:
            if not had_multipart and state.multipart_id is not None:
                # this chunk began the multipart upload and did not count: nothing will ever complete it
                await self._upstream.abort_multipart(layout.upload_data(name, upload_id), state.multipart_id)
            raise
        if hasher is not None:
            self._keep_hash(upload_id, state.offset, hasher)
        if received and previous_tail is not None:
            await self._delete_quietly(previous_tail)
        return state

    async def _take_chunk(
        self, name: str, state: UploadState, body: AsyncIterator[bytes], length: int | None, hasher: "hashlib._Hash | None"
    ) -> int:
        """Stream one chunk into parts and a new tail, then save the state; returns the bytes received."""
        spool = self._spool()
        received = 0
        part_size = self._settings.part_size
        try:
            async for chunk in body:
                if not chunk:
                    continue
                if received == 0 and state.tail:
                    spool.write(await self._read_tail(name, state))
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
            if length is not None and received != length:
                raise errors.RegistryError(
                    errors.SIZE_INVALID, f"Content-Range announced {length} bytes, the chunk held {received}"
                )
            if received == 0:
                return 0  # nothing new: the saved state stands as it is
            if spool.tell() >= MIN_PART:
                await self._flush_part(name, state, spool)
                spool.close()
                spool = self._spool()
            spool.seek(0)
            remainder = spool.read()
        finally:
            spool.close()
        state.offset += received
        state.tail = len(remainder)
        if remainder:
            await self._backend(self._upstream.put(layout.upload_tail(name, state.id, state.offset), remainder))
        await self._save(name, state)
        return received

    async def finish(self, name: str, upload_id: str, digest: Digest, body: AsyncIterator[bytes]) -> None:
        """Take the last chunk (may be empty), verify the whole upload against `digest`, publish the blob."""
        state = await self.append(name, upload_id, body)
        local = self._hashes.pop(upload_id, None)
        try:
            if state.multipart_id is None:
                data = await self._read_tail(name, state) if state.tail else b""
                _verify(digest, hashlib.new(digest.algorithm, data).hexdigest())
                if not await self._exists(layout.blob_data(digest), len(data)):
                    await self._backend(self._upstream.put(layout.blob_data(digest), data))
            else:
                staged = layout.upload_data(name, upload_id)
                if state.tail:
                    await self._flush_part(name, state, await self._read_tail(name, state))
                parts = [(number, etag) for number, etag, _ in state.parts]
                await self._backend(self._upstream.complete_multipart(staged, state.multipart_id, parts))
                state.multipart_id = None
                if local is not None and local[0] == state.offset and digest.algorithm == "sha256":
                    actual = local[1].hexdigest()
                else:
                    actual = await self._hash_object(staged, state.offset, digest.algorithm)
                _verify(digest, actual)
                if not await self._exists(layout.blob_data(digest), state.offset):
                    await self._backend(self._upstream.copy(staged, layout.blob_data(digest), state.offset))
            await self.link(name, digest)
            metrics.uploads.labels("ok").inc()
        finally:
            await self._discard(name, state)

    async def monolithic(self, name: str, digest: Digest, body: AsyncIterator[bytes]) -> None:
        """A whole blob in one request (``POST ...?digest=``): its session is nobody's to resume, so any failure
        removes it at once instead of leaving it to the upload purger."""
        state = await self.start(name)
        try:
            await self.finish(name, state.id, digest, body)
        except Exception:
            self._hashes.pop(state.id, None)
            await self._discard(name, UploadState(id=state.id))  # a multipart it began was aborted by `append`
            raise

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
            raise errors.unavailable(error) from error
        await self.link(name, digest)
        return True

    async def cancel(self, name: str, upload_id: str) -> None:
        state = await self.status(name, upload_id)
        self._hashes.pop(upload_id, None)
        await self._discard(name, state)

    async def _discard(self, name: str, state: UploadState) -> None:
        """Remove the session's multipart upload and its whole ``_uploads/<uuid>/`` directory, as registry:2 does."""
        if state.multipart_id is not None:
            await self._upstream.abort_multipart(layout.upload_data(name, state.id), state.multipart_id)
        try:
            await self._upstream.delete_tree(layout.upload_directory(name, state.id))
        except BackendError:
            pass  # an orphan under _uploads/ is harmless; registry:2's upload purger removes old ones

    def _spool(self) -> BinaryIO:
        """A part is gathered in an anonymous file, not in memory: a 64 MiB part costs page cache, not RSS."""
        return tempfile.TemporaryFile(dir=self._spool_directory)

    def _keep_hash(self, upload_id: str, offset: int, hasher: "hashlib._Hash") -> None:
        self._hashes[upload_id] = (offset, hasher)
        self._hashes.move_to_end(upload_id)
        while len(self._hashes) > LOCAL_HASHES:
            self._hashes.popitem(last=False)

    async def _read_tail(self, name: str, state: UploadState) -> bytes:
        data = await self._backend(self._upstream.read(layout.upload_tail(name, state.id, state.offset), MIN_PART))
        if len(data) != state.tail:
            raise errors.RegistryError(
                errors.UNAVAILABLE, f"upload {state.id}: stored tail has {len(data)} bytes, its state says {state.tail}"
            )
        return data

    async def _flush_part(self, name: str, state: UploadState, part: BinaryIO | bytes) -> None:
        staged = layout.upload_data(name, state.id)
        number = len(state.parts) + 1
        if number > MAX_PARTS:
            raise errors.RegistryError(
                errors.BLOB_UPLOAD_INVALID,
                f"upload would need more than {MAX_PARTS} parts; send fewer, larger chunks",
                status=413,
            )
        if state.multipart_id is None:
            state.multipart_id = await self._backend(self._upstream.start_multipart(staged))
        if isinstance(part, bytes):
            size = len(part)
        else:
            size = part.tell()
            part.seek(0)
        etag = await self._backend(self._upstream.put_part(staged, state.multipart_id, number, part, size))
        state.parts.append([number, etag, size])

    async def _exists(self, key: str, size: int) -> bool:
        """Whether `key` already holds `size` bytes (a blob pushed before needs no second copy)."""
        try:
            return (await self._upstream.stat(key)).size == size
        except NotFound:
            return False
        except BackendError as error:
            raise errors.unavailable(error) from error

    async def _hash_object(self, key: str, size: int, algorithm: str) -> str:
        hasher = hashlib.new(algorithm)
        if size:
            try:
                async for chunk in self._upstream.read_range(key, 0, size):
                    hasher.update(chunk)
            except (NotFound, BackendError) as error:
                raise errors.unavailable(error) from error
        return hasher.hexdigest()

    async def _save(self, name: str, state: UploadState) -> None:
        await self._backend(self._upstream.put(layout.upload_state(name, state.id), orjson.dumps(asdict(state))))

    async def _delete_quietly(self, key: str) -> None:
        try:
            await self._upstream.delete(key)
        except (NotFound, BackendError):
            pass  # removed with the whole upload directory at the end

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
            raise errors.unavailable(error) from error


def _verify(digest: Digest, actual: str) -> None:
    if actual != digest.hex:
        metrics.uploads.labels("digest_invalid").inc()
        raise errors.RegistryError(
            errors.DIGEST_INVALID,
            f"uploaded content hashes to {digest.algorithm}:{actual}, not {digest}",
            {"digest": str(digest)},
        )


def range_headers(name: str, state: UploadState) -> dict[str, str]:
    """Location, Range and Docker-Upload-UUID, as registry:2 sends them for an upload in progress."""
    return {
        "Location": f"/v2/{name}/blobs/uploads/{state.id}",
        "Range": f"0-{max(state.offset - 1, 0)}",
        "Docker-Upload-UUID": state.id,
    }


def _unknown_upload(upload_id: str) -> errors.RegistryError:
    return errors.RegistryError(errors.BLOB_UPLOAD_UNKNOWN, f"upload {upload_id!r} is not known", {"uuid": upload_id})
