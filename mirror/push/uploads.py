"""Blob upload sessions, kept in the backend so the chunks of one session may reach different edges.

A session is ``_uploads/<uuid>/``: the multipart upload of ``data`` (parts spooled and sent by `mirror.push.spool`),
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

Modules: `session.py` (the stored state and the session's objects), `kept.py` (the hashes and tails kept in
memory), `races.py` (requests racing on one session), `bloblinks.py` (the blob's link: written here, removed by a
DELETE through `Publisher`); this one runs the protocol: chunks, the finish, mounts and monolithic pushes.

Finishing is idempotent: the state records when the multipart upload was completed (so a crash after that point
loses nothing), a failed finish leaves the session for a retry unless it can never succeed, and a finish of a
session already finished answers as the first one did when the blob is linked.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import AsyncIterator

from mirror import layout, metrics
from mirror.config import UploadConfig
from mirror.domain import Invalid, OutOfStep, Oversized, Problem, Unavailable, Unknown
from mirror.push import races, verify
from mirror.push.bloblinks import BlobLinks
from mirror.push.kept import KeptCopies
from mirror.push.notices import CacheNotices
from mirror.config import MAX_PARTS
from mirror.push.spool import PartSpooler, SpoolPool
from mirror.push.session import SessionStore, UploadState
from mirror.reference import Digest
from mirror.upstream import BackendError, NotFound, Reader, Upstream

# Sessions whose failed chunks' part numbers are remembered (see Uploads._abandoned).
ABANDONED_REMEMBERED = 4096


class Uploads:
    def __init__(
        self, upstream: Upstream, notices: CacheNotices, settings: UploadConfig, spool_directory: Path,
        readback: Reader | None = None,
    ) -> None:
        spool_directory.mkdir(parents=True, exist_ok=True)
        # Idle spools kept for later parts: as many as one request has at once (parallel_parts + 1).
        self._spools = SpoolPool(spool_directory, keep=settings.parallel_parts + 1)
        self._upstream = upstream
        self._settings = settings
        self._kept = KeptCopies()
        # Reads of pushed data (tails, assembled uploads): the bucket, counted apart from pulls' reads.
        self._readback = readback or upstream
        self._sessions = SessionStore(upstream, self._readback, self._kept)
        self._links = BlobLinks(upstream, notices)
        # Upload id -> the highest part number a failed chunk on this edge sent. A resumed chunk numbers its parts
        # after it: a part of the same number could land after the resumed one (a cancelled PUT the bucket already
        # has), and SeaweedFS keeps both versions of a re-sent part number, so a number is never used twice.
        self._abandoned: OrderedDict[str, int] = OrderedDict()

    def _next_part(self, state: UploadState) -> int:
        """The number of the session's next part: after every part it recorded and every part a failed chunk on
        this edge sent (part numbers need only ascend, not be contiguous)."""
        recorded = max((part[0] for part in state.parts), default=0)
        return max(recorded, self._abandoned.get(state.id, 0)) + 1

    def _abandon(self, upload_id: str, last_number: int) -> None:
        self._abandoned[upload_id] = max(last_number, self._abandoned.get(upload_id, 0))
        self._abandoned.move_to_end(upload_id)
        while len(self._abandoned) > ABANDONED_REMEMBERED:
            self._abandoned.popitem(last=False)

    async def start(self, name: str) -> UploadState:
        state = await self._sessions.start(name)
        self._kept.keep_hash(state.id, state.nonce, hashlib.sha256())
        return state

    async def status(self, name: str, upload_id: str) -> UploadState:
        return await self._sessions.status(name, upload_id)

    async def link(self, name: str, digest: Digest) -> None:
        """Put blob `digest` into repository `name` (see `BlobLinks.link`)."""
        await self._links.link(name, digest)

    async def mount(self, name: str, digest: Digest, source: str) -> bool:
        """Link a blob of repository `source` into `name` without copying bytes; False when `source` lacks it."""
        return await self._links.mount(name, digest, source)

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
        local = self._kept.hash(state.id, state.nonce)
        hasher = local.copy() if local is not None else None
        spooler = PartSpooler(
            self._upstream, layout.upload_data(name, state.id), state.multipart_id, self._next_part(state),
            self._settings.part_size, self._spools, self._settings.parallel_parts,
        )
        head = (lambda: self._sessions.read_tail(name, state)) if state.tail else None
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
                await self._sessions.save(name, new)
            except NotFound:
                raise await races.moved(self._sessions, name, state) from None
        except BaseException:
            self._abandon(state.id, spooler.last_number)
            if state.multipart_id is None and spooler.chunk.multipart_id is not None:
                # this chunk began the multipart upload and did not count: nothing will ever complete it
                await self._upstream.abort_multipart(layout.upload_data(name, state.id), spooler.chunk.multipart_id)
            raise
        if hasher is not None:
            self._kept.keep_hash(state.id, new.nonce, hasher)
        self._kept.keep_tail(state.id, new.nonce, chunk.remainder)
        if state.tail:
            await self._sessions.delete_quietly(layout.upload_tail(name, state.id, state.nonce))
        return new

    async def finish(self, name: str, upload_id: str, digest: Digest, body: AsyncIterator[bytes]) -> None:
        """Take the last chunk (may be empty), verify the whole upload against `digest`, publish the blob."""
        try:
            state = await self.status(name, upload_id)
        except Unknown as error:
            if error.what == "upload" and await self._links.is_linked(name, digest):
                return  # finished already: a retry of a PUT whose answer was lost
            raise
        await self._finish(name, state, digest, body)

    async def _finish(self, name: str, state: UploadState, digest: Digest, body: AsyncIterator[bytes]) -> None:
        upload_id = state.id
        state = await self._append(name, state, body, None)
        local = self._kept.hash(upload_id, state.nonce)
        trusted = local is not None and digest.algorithm == "sha256" and not state.completed
        try:
            if state.multipart_id is None and not state.completed:
                data = await self._sessions.read_tail(name, state, kept=True) if state.tail else b""
                verify.check_bytes(digest, data)
                if not await self._exists(layout.blob_data(digest), len(data)):
                    with Unavailable.on(BackendError):
                        await self._upstream.put(layout.blob_data(digest), data)
            else:
                staged = layout.upload_data(name, upload_id)
                if not state.completed:
                    trusted = await self._assemble(name, state) and trusted
                if trusted and local is not None:
                    verify.check(digest, local.hexdigest())
                else:
                    await verify.check_object(self._readback, staged, state.offset, digest)
                if not await self._exists(layout.blob_data(digest), state.offset):
                    with Unavailable.on(BackendError):
                        await self._upstream.copy(staged, layout.blob_data(digest), state.offset)
        except (Invalid, Oversized) as error:
            if error.what in ("digest", "upload"):
                await self._sessions.drop(name, state)  # it can never succeed: nothing of it is worth keeping
            raise
        except NotFound:
            moved = await races.moved(self._sessions, name, state)
            if isinstance(moved, Unknown) and moved.what == "upload" and await self._links.is_linked(name, digest):
                return  # another request on this session finished it while this one ran
            raise moved from None
        await self.link(name, digest)
        metrics.uploads.labels("ok").inc()
        await self._sessions.drop(name, state)

    async def _assemble(self, name: str, state: UploadState) -> bool:
        """Complete the multipart upload from the parts `state` lists (its tail as the last part) and record that
        in the state; True when this request checked that the backend held exactly those parts."""
        staged = layout.upload_data(name, state.id)
        assert state.multipart_id is not None
        parts = [(number, etag) for number, etag, _ in state.parts]
        try:
            if state.tail:
                number = self._next_part(state)
                if number > MAX_PARTS:
                    raise Oversized("upload", f"upload needs more than {MAX_PARTS} parts")
                tail = await self._sessions.read_tail(name, state, kept=True)
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
            await races.completed_elsewhere(self._sessions, name, state)
            return False
        except BackendError as error:
            raise Unavailable.of(error) from error
        state.multipart_id = None
        state.completed = True
        await self._sessions.save(name, state)
        return True

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
            await self._sessions.drop(name, state)
            raise

    async def cancel(self, name: str, upload_id: str) -> None:
        await self._sessions.drop(name, await self.status(name, upload_id))

    async def _exists(self, key: str, size: int) -> bool:
        """Whether `key` already holds `size` bytes (a blob pushed and verified before needs no second copy)."""
        try:
            return (await self._upstream.stat(key)).size == size
        except NotFound:
            return False
        except BackendError as error:
            raise Unavailable.of(error) from error

    def _too_large(self) -> Oversized:
        metrics.uploads.labels("too_large").inc()
        return Oversized("blob", f"upload exceeds this mirror's limit of {self._settings.max_size} bytes")


def _ignore(_: bytes | memoryview) -> None:
    return None
