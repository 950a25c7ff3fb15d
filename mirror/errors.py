"""Every error the registry API can answer with, in the OCI distribution-spec JSON form.

Handlers raise `RegistryError`; the API layer turns it into
``{"errors": [{"code": ..., "message": ..., "detail": ...}]}`` with the code's HTTP status.
Lower layers raise `mirror.domain` errors (never these); `mirror/api/failures.py` maps them to codes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: str


# The codes of spec.md "Error Codes": the `code` of a 4xx JSON error body MUST be one of these.
SPEC_CODES = frozenset(
    {
        "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
        "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
    }
)

BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", 404, "blob unknown to registry")
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")
BLOB_UPLOAD_UNKNOWN = ErrorCode("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
DIGEST_INVALID = ErrorCode("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
MANIFEST_BLOB_UNKNOWN = ErrorCode("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a blob unknown to the repository")
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", 400, "manifest invalid")
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", 404, "manifest unknown")
NAME_INVALID = ErrorCode("NAME_INVALID", 400, "invalid repository name")
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", 404, "repository name not known to registry")
SIZE_INVALID = ErrorCode("SIZE_INVALID", 400, "provided length did not match content length")
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", 401, "authentication required")
DENIED = ErrorCode("DENIED", 403, "requested access to the resource is denied")
UNSUPPORTED = ErrorCode("UNSUPPORTED", 405, "the operation is unsupported")
TOO_MANY_REQUESTS = ErrorCode("TOOMANYREQUESTS", 429, "too many requests")

# Conditions the spec has no code of their own for. Each answers with its own status and the spec code that
# describes it best, with a message saying exactly what was wrong (a client acts on the status; a person reads
# the message). registry:2 uses non-spec codes here (TAG_INVALID, RANGE_INVALID, PAGINATION_NUMBER_INVALID) or a
# plain-text body (unknown route).
# A reference that is neither a tag nor a digest names no manifest: 404 is the only failure status the spec
# gives the manifest endpoints for pulls (end-3), and the one registry:2 answers (its router matches no route).
TAG_INVALID = ErrorCode("MANIFEST_UNKNOWN", 404, "manifest unknown: the reference is neither a tag nor a digest")
# Upload chunks that do not continue the upload: the upload is what is invalid.
RANGE_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", 416, "invalid content range")
# A blob Range outside the blob (the Content-Range header tells the blob's size, as RFC 9110 asks).
RANGE_NOT_SATISFIABLE = ErrorCode("UNSUPPORTED", 416, "requested range not satisfiable")
PAGINATION_NUMBER_INVALID = ErrorCode("UNSUPPORTED", 400, "invalid number of results requested")
# No route: this registry does not support the operation at that URL.
NOT_FOUND = ErrorCode("UNSUPPORTED", 404, "no such endpoint")
# The event receiver (/admin/notifications): a body that is not an event envelope, or one too large.
ENVELOPE_INVALID = ErrorCode("UNSUPPORTED", 400, "the body is not a registry event envelope")
ENVELOPE_TOO_LARGE = ErrorCode("SIZE_INVALID", 413, "the event envelope is too large")
ENVELOPE_MEDIA_TYPE = ErrorCode("UNSUPPORTED", 415, "unsupported media type for an event envelope")
# The event receiver's queue is full: the sender keeps the events and retries after Retry-After.
EVENTS_BUSY = ErrorCode("UNAVAILABLE", 503, "the event queue is full; retry later")

# 5xx answers: the spec constrains only 4xx bodies; these are registry:2's codes for the same conditions.
UNAVAILABLE = ErrorCode("UNAVAILABLE", 503, "the storage backend is unavailable")
UNKNOWN = ErrorCode("UNKNOWN", 500, "unknown error")

class RegistryError(Exception):
    """An error to answer with: one OCI error code, a human message and optional detail."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.message = message or code.message
        self.detail = detail
        self.status = status or code.status
        self.headers = headers or {}

    def body(self) -> bytes:
        entry: dict[str, Any] = {"code": self.code.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return orjson.dumps({"errors": [entry]})


def unavailable(cause: BaseException) -> RegistryError:
    """503 UNAVAILABLE for a backend failure, naming its cause (the edge still serves what it has cached).

    A remote registry's rate limit (a cause with a ``retry_after``) is passed on as 429 with ``Retry-After``.
    """
    retry_after = getattr(cause, "retry_after", None)
    if isinstance(retry_after, int):
        return RegistryError(TOO_MANY_REQUESTS, str(cause), headers={"Retry-After": str(retry_after)})
    return RegistryError(UNAVAILABLE, f"storage backend unavailable: {cause}")
