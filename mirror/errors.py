"""Every error the registry API can answer with, in the OCI distribution-spec JSON form.

Handlers raise `RegistryError`; the API layer turns it into
``{"errors": [{"code": ..., "message": ..., "detail": ...}]}`` with the code's HTTP status.
Lower layers (cache, upstream) raise their own exceptions; the API maps those to codes here.
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
TAG_INVALID = ErrorCode("TAG_INVALID", 400, "manifest tag did not match URI")
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", 401, "authentication required")
DENIED = ErrorCode("DENIED", 403, "requested access to the resource is denied")
UNSUPPORTED = ErrorCode("UNSUPPORTED", 405, "the operation is unsupported")
TOO_MANY_REQUESTS = ErrorCode("TOOMANYREQUESTS", 429, "too many requests")
RANGE_INVALID = ErrorCode("RANGE_INVALID", 416, "invalid content range")
PAGINATION_NUMBER_INVALID = ErrorCode("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested")
NOT_FOUND = ErrorCode("NOT_FOUND", 404, "no such endpoint")
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
