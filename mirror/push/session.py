"""One upload session's saved record: the ``state`` object under ``_uploads/<uuid>/``, how it is named in answers,
and the session's objects in the backend (`SessionStore`: its state, its tails, its assembled data).

The protocol that writes it is `mirror.push.uploads`; `mirror.push.purge_uploads` reads it to find a session's multipart
upload.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from mirror import layout
from mirror.domain import Invalid, Unavailable, Unknown
from mirror.push.kept import KeptCopies
from mirror.push.spool import MIN_PART
from mirror.upstream import BackendError, NotFound, Reader, Upstream

STATE_MAX_SIZE = 1024 * 1024
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class UploadState:
    id: str
    offset: int = 0
    multipart_id: str | None = None
    parts: list[list[Any]] = field(default_factory=list)  # [number, ETag, size]
    tail: int = 0  # bytes in tails/<nonce>
    nonce: str = ""  # new with every saved state
    completed: bool = False  # ``data`` is assembled; verification and publishing remain

    @classmethod
    def parse(cls, data: bytes) -> "UploadState":
        document = orjson.loads(data)
        known = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in document.items() if key in known})


def range_headers(name: str, state: UploadState) -> dict[str, str]:
    """Location, Range and Docker-Upload-UUID, as registry:2 sends them for an upload in progress."""
    return {
        "Location": f"/v2/{name}/blobs/uploads/{state.id}",
        "Range": f"0-{max(state.offset - 1, 0)}",
        "Docker-Upload-UUID": state.id,
    }


def unknown_upload(upload_id: str, message: str = "") -> Unknown:
    """BLOB_UPLOAD_UNKNOWN for `upload_id`; `message` says why, when more is known than that it is not there."""
    return Unknown("upload", message or f"upload {upload_id!r} is not known", {"uuid": upload_id})


class SessionStore:
    """A session's objects under ``_uploads/<uuid>/``: read, saved and dropped (`kept`: what this process holds of
    the sessions whose bytes passed through it)."""

    def __init__(self, upstream: Upstream, readback: Reader, kept: KeptCopies) -> None:
        self._upstream = upstream
        self._readback = readback  # reads of pushed data: the bucket, counted apart from pulls' reads
        self.kept = kept

    async def start(self, name: str) -> UploadState:
        state = UploadState(id=uuid.uuid4().hex, nonce=uuid.uuid4().hex)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat().encode()
        with Unavailable.on(BackendError):
            await self._upstream.put(layout.upload_started_at(name, state.id), started)
        await self.save(name, state)
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

    async def save(self, name: str, state: UploadState) -> None:
        with Unavailable.on(BackendError):
            await self._upstream.put(layout.upload_state(name, state.id), orjson.dumps(dataclasses.asdict(state)))

    async def drop(self, name: str, state: UploadState) -> None:
        """Forget the session: its multipart upload and its whole ``_uploads/<uuid>/`` directory, as registry:2 does.

        The ``state`` object goes first: a request racing on the session then finds it unknown (404) instead of a
        session whose tail or data vanished under it (which would look like a backend fault)."""
        self.kept.forget(state.id)
        await self.delete_quietly(layout.upload_state(name, state.id))
        if state.multipart_id is not None:
            await self._upstream.abort_multipart(layout.upload_data(name, state.id), state.multipart_id)
        try:
            await self._upstream.delete_tree(layout.upload_directory(name, state.id))
        except BackendError:
            pass  # an orphan under _uploads/ is harmless; `edge-mirror purge-uploads` removes old ones

    async def read_tail(self, name: str, state: UploadState, kept: bool = False) -> bytes:
        """The session's tail; at the finish (`kept`) from memory when this process wrote it. A next chunk reads it
        from the backend: a tail gone from there (a racing cancel) makes the session unknown (see `races.moved`)."""
        held = self.kept.tail(state.id, state.nonce, state.tail) if kept else None
        if held is not None:
            return held  # this process wrote tails/<nonce>: the same bytes, no read back
        with Unavailable.on(BackendError):
            data = await self._readback.read(layout.upload_tail(name, state.id, state.nonce), MIN_PART)
        if len(data) != state.tail:
            raise Unavailable(f"upload {state.id}: stored tail has {len(data)} bytes, its state says {state.tail}")
        return data

    async def staged_size(self, name: str, state: UploadState) -> int:
        """The size of the session's assembled ``data`` (-1 when there is none)."""
        try:
            return (await self._upstream.stat(layout.upload_data(name, state.id))).size
        except NotFound:
            return -1
        except BackendError as error:
            raise Unavailable.of(error) from error

    async def delete_quietly(self, key: str) -> None:
        try:
            await self._upstream.delete(key)
        except (NotFound, BackendError):
            pass  # removed with the whole upload directory at the end
