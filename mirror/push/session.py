"""One upload session's saved record: the ``state`` object under ``_uploads/<uuid>/`` and how it is named in answers.

The protocol that writes it is `mirror.push.uploads`; `mirror.push.purge` reads it to find a session's multipart
upload.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import orjson

from mirror.domain import Unknown

STATE_MAX_SIZE = 1024 * 1024
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class UploadState:
    id: str
    offset: int = 0
    multipart_id: str | None = None
    parts: list[list] = field(default_factory=list)  # [number, ETag, size]
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
