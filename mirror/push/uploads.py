"""Blob upload sessions, kept in the backend so the chunks of one session may reach different edges.

A session is ``_uploads/<uuid>/``: the multipart upload of ``data`` (parts spooled and sent by `mirror.push.parts`),
a ``state`` object (multipart id, parts with their ETags, offset, the size of the tail) and the tail: the bytes
after the last whole part, in ``tails/<nonce>``. Every saved state gets a new random nonce, which also names its
tail, so a chunk counts whole or not at all: only the final write of ``state`` makes it count, and a chunk that
fails half-way (client gone, backend error, wrong length) leaves the session where it was.

The sha256 runs while bytes pass through this process, and is bound to the state it covers: it is kept with the
nonce of the state this process saved, and trusted at the end only when the stored state still carries that nonce
and the backend still holds parts with exactly the ETags that state lists. Anything else (chunks through other
edges, chunks racing on one session, a finish retried elsewhere) re-reads the assembled data to verify it. Nothing
becomes visible under ``blobs/`` before the digest matches. The tail a chunk leaves is kept in memory as well (its
object is named by the same nonce), so the finish of a push whose chunks all reached this edge reads none of its
data back.

Finishing is idempotent: the state records when the multipart upload was completed (so a crash after that point
loses nothing), a failed finish leaves the session for a retry unless it can never succeed, and a finish of a
session already finished answers as the first one did when the blob is linked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import AsyncIterator

import orjson

from mirror import layout, metrics
from mirror.config import UploadConfig
from mirror.push import verify
from mirror.push.notices import CacheNotices
from mirror.push.parts import MAX_PARTS, MIN_PART, PartSpooler
from mirror.push.session import STATE_MAX_SIZE, UPLOAD_ID, UploadState, unknown_upload
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Reader, Upstream
from mirror.domain import Invalid, OutOfStep, Oversized, Problem, Unavailable, Unknown

# Running hashes of sessions whose every byte passed through this process; an abandoned session's entry is
# dropped when this many newer ones exist (it is only a shortcut: a missing hash means re-reading the data).
LOCAL_HASHES = 1024
# Tails (the bytes after a session's last whole part, < 5 MiB each) of sessions whose last chunk came through this
# process, kept in memory up to this many bytes in all: the finish takes them from here instead of reading them
# back from the backend (a tail's object is named by its state's nonce, so a kept tail is exactly the stored one;
# any other state reads it from the backend).
LOCAL_TAIL_BYTES = 64 * 1024 * 1024
# Pauses (seconds) while another request assembles a session's data, before a finish racing it answers 503.
FINISHER_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 2.0)


class Uploads:
    def __init__(
        self, upstream: Upstream, notices: CacheNotices, settings: UploadConfig, spool_directory: Path,
        readback: Reader | None = None,
    ) -> None:
        self._spool_directory = spool_directory
        spool_directory.mkdir(parents=True, exist_ok=True)
        self._upstream = upstream
        # Reads of pushed data (tails, assembled uploads): the bucket, counted apart from pulls' reads.
        self._readback = readback or upstream
        self._notices = notices
        self._settings = settings
        self._hashes: OrderedDict[str, tuple[str, "hashlib._Hash"]] = OrderedDict()
        self._tails: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._tail_bytes = 0

    async def start(self, name: str) -> UploadState:
        state = UploadState(id=uuid.uuid4().hex, nonce=uuid.uuid4().hex)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat().encode()
        with Unavailable.on(BackendError):
            await self._upstream.put(layout.upload_started_at(name, state.id), started)
        await self._save(name, state)
        self._keep_hash(state.id, state.nonce, hashlib.sha256())
        return state

    async def status(self, name: str, upload_id: str) -> UploadState:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise unknown_upload(upload_id)
        try:
            data = await self._upstream.read(layout.upload_state(name, upload_id), STATE_MAX_SIZE)
        except NotFound:
            raise unknown_upload(upload_id) from None
        except BackendError as error:
            raise Unavailable.of(error) from error
        try:
            return UploadState.parse(data)
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            raise Invalid("upload", f"upload {upload_id}: stored state is unreadable") from None

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
            raise OutOfStep(f"chunk starts at {start}, but the upload has {state.offset} bytes", name, state.id, state.offset)
        if length is not None and declared is not None and declared != length:
            raise Invalid("size", f"Content-Range covers {length} bytes, Content-Length says {declared}")
        if declared is not None and state.offset + declared > self._settings.max_size:
            raise self._too_large()
        return await self._append(name, state, body, length)

    async def _append(self, name: str, state: UploadState, body: AsyncIterator[bytes], length: int | None) -> UploadState:
        if state.completed:
            async for piece in body:
                if piece:
                    raise Invalid("upload", f"upload {state.id} is being finished; no more chunks")
            return state
        local = self._hashes.get(state.id)
        hasher = local[1].copy() if local is not None and local[0] == state.nonce else None
        spooler = PartSpooler(
            self._upstream, layout.upload_data(name, state.id), state.multipart_id, len(state.parts) + 1,
            self._settings.part_size, self._spool_directory, self._settings.parallel_parts,
        )
        head = (lambda: self._read_tail(name, state)) if state.tail else None
        try:
            try:
                chunk = await spooler.take(
                    body, head, self._settings.max_size - state.offset, self._too_large, hasher.update if hasher else _ignore
                )
                if length is not None and chunk.received != length:
                    raise Invalid("size", f"Content-Range announced {length} bytes, the chunk held {chunk.received}")
                if not chunk.received:
                    return state  # nothing new: the saved state stands as it is
                new = UploadState(
                    id=state.id,
                    offset=state.offset + chunk.received,
                    multipart_id=spooler.chunk.multipart_id,
                    parts=[*state.parts, *chunk.parts],
                    tail=len(chunk.remainder),
                    nonce=uuid.uuid4().hex,
                )
                if chunk.remainder:
                    with Unavailable.on(BackendError):
                        await self._upstream.put(layout.upload_tail(name, state.id, new.nonce), chunk.remainder)
                await self._save(name, new)
            except NotFound:
                raise await self._moved(name, state) from None
        except BaseException:
            if state.multipart_id is None and spooler.chunk.multipart_id is not None:
                # this chunk began the multipart upload and did not count: nothing will ever complete it
                await self._upstream.abort_multipart(layout.upload_data(name, state.id), spooler.chunk.multipart_id)
            raise
        if hasher is not None:
            self._keep_hash(state.id, new.nonce, hasher)
        self._keep_tail(state.id, new.nonce, chunk.remainder)
        if state.tail:
            await self._delete_quietly(layout.upload_tail(name, state.id, state.nonce))
        return new

    async def finish(self, name: str, upload_id: str, digest: Digest, body: AsyncIterator[bytes]) -> None:
        """Take the last chunk (may be empty), verify the whole upload against `digest`, publish the blob."""
        try:
            state = await self.status(name, upload_id)
        except Unknown as error:
            if error.what == "upload" and await self._notices.is_linked(name, "blob", digest):
                return  # finished already: a retry of a PUT whose answer was lost
            raise
        await self._finish(name, state, digest, body)

    async def _finish(self, name: str, state: UploadState, digest: Digest, body: AsyncIterator[bytes]) -> None:
        upload_id = state.id
        state = await self._append(name, state, body, None)
        local = self._hashes.get(upload_id)
        trusted = local is not None and local[0] == state.nonce and digest.algorithm == "sha256" and not state.completed
        try:
            if state.multipart_id is None and not state.completed:
                data = await self._read_tail(name, state, kept=True) if state.tail else b""
                verify.check_bytes(digest, data)
                if not await self._exists(layout.blob_data(digest), len(data)):
                    with Unavailable.on(BackendError):
                        await self._upstream.put(layout.blob_data(digest), data)
            else:
                staged = layout.upload_data(name, upload_id)
                if not state.completed:
                    trusted = await self._assemble(name, state) and trusted
                if trusted and local is not None:
                    verify.check(digest, local[1].hexdigest())
                else:
                    await verify.check_object(self._readback, staged, state.offset, digest)
                if not await self._exists(layout.blob_data(digest), state.offset):
                    with Unavailable.on(BackendError):
                        await self._upstream.copy(staged, layout.blob_data(digest), state.offset)
        except (Invalid, Oversized) as error:
            if error.what in ("digest", "upload"):
                await self._drop(name, state)  # it can never succeed: nothing of it is worth keeping
            raise
        except NotFound:
            moved = await self._moved(name, state)
            if isinstance(moved, Unknown) and moved.what == "upload" and await self._notices.is_linked(name, "blob", digest):
                return  # another request on this session finished it while this one ran
            raise moved from None
        await self.link(name, digest)
        metrics.uploads.labels("ok").inc()
        await self._drop(name, state)

    async def _assemble(self, name: str, state: UploadState) -> bool:
        """Complete the multipart upload from the parts `state` lists (its tail as the last part) and record that
        in the state; True when this request checked that the backend held exactly those parts."""
        staged = layout.upload_data(name, state.id)
        assert state.multipart_id is not None
        parts = [(number, etag) for number, etag, _ in state.parts]
        try:
            if state.tail:
                number = len(state.parts) + 1
                if number > MAX_PARTS:
                    raise Oversized("upload", f"upload needs more than {MAX_PARTS} parts")
                tail = await self._read_tail(name, state, kept=True)
                parts.append((number, await self._upstream.put_part(staged, state.multipart_id, number, tail, len(tail))))
            held = await self._upstream.list_parts(staged, state.multipart_id)
            for number, etag in parts:
                if held.get(number) != etag:
                    raise Invalid(
                        "upload",
                        f"upload {state.id}: part {number} changed after it was recorded (chunks raced); push the blob again",
                    )
            await self._upstream.complete_multipart(staged, state.multipart_id, parts)
        except NotFound:
            await self._completed_elsewhere(name, state)
            return False
        except BackendError as error:
            raise Unavailable.of(error) from error
        state.multipart_id = None
        state.completed = True
        await self._save(name, state)
        return True

    async def _moved(self, name: str, state: UploadState) -> Problem:
        """Something of the session vanished while this request ran: what became of the session?

        Gone (finished or cancelled by another request): BLOB_UPLOAD_UNKNOWN. Moved on (another request's chunk
        counted first): RANGE_INVALID with its new offset, so the client can ask and resend. Neither, with no
        multipart upload in flight: an object the saved state names is gone (a request that finished or cancelled
        the session deleted it while this one saved a state, or the backend lost it). Such a session can never
        complete, so it is dropped and answered as unknown: the client starts the upload again instead of retrying
        one that cannot succeed. With a multipart upload in flight, a finish may be completing it right now, so
        the session is left alone and the answer is a retryable 503."""
        try:
            current = await self.status(name, state.id)
        except Problem as error:
            return error
        if (current.nonce, current.completed) != (state.nonce, state.completed):
            return OutOfStep(
                f"upload {state.id} changed while this request ran (another request on it); it holds {current.offset} bytes",
                name, current.id, current.offset,
            )
        if current.multipart_id is not None:
            return Unavailable(f"upload {state.id}: its multipart upload is gone; retry shortly")
        await self._drop(name, current)
        return unknown_upload(
            state.id, f"upload {state.id} lost part of its data (another request finished or cancelled it); start the upload again"
        )

    async def _completed_elsewhere(self, name: str, state: UploadState) -> None:
        """The multipart upload is gone: another request (or one that crashed) completed it, or it was cancelled.

        A request still assembling the data is waited for a few seconds (its finish then stands for this one too)
        before this one gives up with a retryable 503."""
        for pause in (*FINISHER_WAITS, None):
            try:
                current = await self.status(name, state.id)
            except Unknown as error:
                if error.what == "upload":
                    raise NotFound(state.id) from None  # finished or cancelled meanwhile: the caller checks which
                raise
            if current.nonce != state.nonce:
                raise await self._moved(name, state)
            if current.completed or await self._staged_size(name, state) == state.offset:
                break
            if pause is None:
                raise Unavailable(f"upload {state.id} is being finished by another request; retry shortly")
            await asyncio.sleep(pause)
        if not current.completed:
            current.multipart_id, current.completed = None, True  # an edge died right after completing it
            await self._save(name, current)
        state.multipart_id = None
        state.completed = True

    async def _staged_size(self, name: str, state: UploadState) -> int:
        try:
            return (await self._upstream.stat(layout.upload_data(name, state.id))).size
        except NotFound:
            return -1
        except BackendError as error:
            raise Unavailable.of(error) from error

    async def monolithic(self, name: str, digest: Digest, body: AsyncIterator[bytes]) -> None:
        """A whole blob in one request (``POST ...?digest=``): its session is nobody's to resume, so any failure
        removes it at once instead of leaving it to the upload purger."""
        state = await self.start(name)
        try:
            await self.finish(name, state.id, digest, body)
        except BaseException:
            try:
                state = await self.status(name, state.id)  # the multipart upload it may have begun
            except Problem:
                pass
            await self._drop(name, state)
            raise

    async def link(self, name: str, digest: Digest) -> None:
        """Put blob `digest` into repository `name` (its ``_layers`` link), as registry:2 does after a push."""
        with Unavailable.on(BackendError):
            await self._upstream.put(layout.layer_link(name, digest), str(digest).encode())
        self._notices.linked(name, "blob", digest)

    async def mount(self, name: str, digest: Digest, source: str) -> bool:
        """Link a blob of repository `source` into `name` without copying bytes; False when `source` lacks it."""
        if not await self._notices.is_linked(source, "blob", digest):
            return False
        try:
            await self._upstream.stat(layout.blob_data(digest))
        except NotFound:
            return False
        except BackendError as error:
            raise Unavailable.of(error) from error
        await self.link(name, digest)
        return True

    async def cancel(self, name: str, upload_id: str) -> None:
        await self._drop(name, await self.status(name, upload_id))

    async def _drop(self, name: str, state: UploadState) -> None:
        """Forget the session: its multipart upload and its whole ``_uploads/<uuid>/`` directory, as registry:2 does.

        The ``state`` object goes first: a request racing on the session then finds it unknown (404) instead of a
        session whose tail or data vanished under it (which would look like a backend fault)."""
        self._hashes.pop(state.id, None)
        self._forget_tail(state.id)
        await self._delete_quietly(layout.upload_state(name, state.id))
        if state.multipart_id is not None:
            await self._upstream.abort_multipart(layout.upload_data(name, state.id), state.multipart_id)
        try:
            await self._upstream.delete_tree(layout.upload_directory(name, state.id))
        except BackendError:
            pass  # an orphan under _uploads/ is harmless; `edge-mirror purge-uploads` removes old ones

    def _keep_hash(self, upload_id: str, nonce: str, hasher: "hashlib._Hash") -> None:
        self._hashes[upload_id] = (nonce, hasher)
        self._hashes.move_to_end(upload_id)
        while len(self._hashes) > LOCAL_HASHES:
            self._hashes.popitem(last=False)

    def _keep_tail(self, upload_id: str, nonce: str, tail: bytes) -> None:
        self._forget_tail(upload_id)
        if not tail or len(tail) > LOCAL_TAIL_BYTES:
            return
        self._tails[upload_id] = (nonce, tail)
        self._tail_bytes += len(tail)
        while self._tail_bytes > LOCAL_TAIL_BYTES:
            self._tail_bytes -= len(self._tails.popitem(last=False)[1][1])

    def _forget_tail(self, upload_id: str) -> None:
        kept = self._tails.pop(upload_id, None)
        if kept is not None:
            self._tail_bytes -= len(kept[1])

    async def _read_tail(self, name: str, state: UploadState, kept: bool = False) -> bytes:
        """The session's tail; at the finish (`kept`) from memory when this process wrote it. A next chunk reads it
        from the backend: a tail gone from there (a racing cancel) makes the session unknown (see `_moved`)."""
        held = self._tails.get(state.id) if kept else None
        if held is not None and held[0] == state.nonce and len(held[1]) == state.tail:
            return held[1]  # this process wrote tails/<nonce>: the same bytes, no read back
        with Unavailable.on(BackendError):
            data = await self._readback.read(layout.upload_tail(name, state.id, state.nonce), MIN_PART)
        if len(data) != state.tail:
            raise Unavailable(f"upload {state.id}: stored tail has {len(data)} bytes, its state says {state.tail}")
        return data

    async def _exists(self, key: str, size: int) -> bool:
        """Whether `key` already holds `size` bytes (a blob pushed and verified before needs no second copy)."""
        try:
            return (await self._upstream.stat(key)).size == size
        except NotFound:
            return False
        except BackendError as error:
            raise Unavailable.of(error) from error

    async def _save(self, name: str, state: UploadState) -> None:
        with Unavailable.on(BackendError):
            await self._upstream.put(layout.upload_state(name, state.id), orjson.dumps(dataclasses.asdict(state)))

    async def _delete_quietly(self, key: str) -> None:
        try:
            await self._upstream.delete(key)
        except (NotFound, BackendError):
            pass  # removed with the whole upload directory at the end

    def _too_large(self) -> Oversized:
        metrics.uploads.labels("too_large").inc()
        return Oversized("blob", f"upload exceeds this mirror's limit of {self._settings.max_size} bytes")


def _ignore(_: bytes | memoryview) -> None:
    return None
