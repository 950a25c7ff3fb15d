"""The one place where what went wrong below the API (`mirror.domain`) becomes a registry error: status, OCI code,
message and headers. `app.py` installs `problem_error` as the exception handler of `Problem`; handlers that must
look at a failure themselves use `registry_error`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mirror import errors
from mirror.api.responses import error_response
from mirror.domain import Denied, Invalid, OutOfStep, Oversized, Problem, Unauthorized, Unavailable, Unknown, Unsupported

UNKNOWN_CODES = {
    "blob": errors.BLOB_UNKNOWN, "manifest": errors.MANIFEST_UNKNOWN, "name": errors.NAME_UNKNOWN,
    "upload": errors.BLOB_UPLOAD_UNKNOWN,
}
INVALID_CODES = {
    "digest": errors.DIGEST_INVALID, "manifest": errors.MANIFEST_INVALID, "name": errors.NAME_INVALID,
    "tag": errors.TAG_INVALID, "upload": errors.BLOB_UPLOAD_INVALID, "size": errors.SIZE_INVALID,
    "reference": errors.MANIFEST_BLOB_UNKNOWN,
}
# An upload of too many parts is an invalid upload; a blob over the size limit is refused (registry:2: DENIED).
OVERSIZED_CODES = {"manifest": errors.MANIFEST_INVALID, "upload": errors.BLOB_UPLOAD_INVALID, "blob": errors.DENIED}
TOO_LARGE_STATUS = 413


def registry_error(problem: Problem) -> errors.RegistryError:
    """The registry's answer to `problem`."""
    message, detail = problem.message, problem.detail
    if isinstance(problem, Unknown):
        return errors.RegistryError(UNKNOWN_CODES[problem.what], message, detail)
    if isinstance(problem, Invalid):
        return errors.RegistryError(INVALID_CODES[problem.what], message, detail)
    if isinstance(problem, Oversized):
        return errors.RegistryError(OVERSIZED_CODES[problem.what], message, detail, status=TOO_LARGE_STATUS)
    if isinstance(problem, OutOfStep):  # registry:2 tells where the upload stands, so the client resends from there
        headers = {
            "Location": f"/v2/{problem.repository}/blobs/uploads/{problem.upload_id}",
            "Range": f"0-{max(problem.offset - 1, 0)}",
            "Docker-Upload-UUID": problem.upload_id,
        }
        return errors.RegistryError(errors.RANGE_INVALID, message, detail, headers=headers)
    if isinstance(problem, Unavailable):
        if problem.retry_after is not None:
            headers = {"Retry-After": str(problem.retry_after)}
            return errors.RegistryError(errors.TOO_MANY_REQUESTS, message, detail, headers=headers)
        return errors.RegistryError(errors.UNAVAILABLE, message, detail)
    if isinstance(problem, Unauthorized):
        return errors.RegistryError(errors.UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": problem.challenge})
    if isinstance(problem, Denied):
        return errors.RegistryError(errors.DENIED, message, detail)
    if isinstance(problem, Unsupported):
        return errors.RegistryError(errors.UNSUPPORTED, message, detail)
    return errors.RegistryError(errors.UNKNOWN, message, detail)


async def problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return error_response(registry_error(exc))
