"""What goes wrong below the API, in the edge's own words: the cache, pushes, backends, peers, referrers, auth and
name/digest parsing raise these; `mirror.api.failures` answers each with its registry error (status, OCI code,
message) in one place. No module below `mirror.api` builds a registry error (a test walks their ASTs).

`what` names the thing concerned, from a closed set per class, so the API picks the exact OCI code::

    Unknown      blob, manifest, name, upload              404 (…_UNKNOWN)
    Invalid      digest, manifest, name, tag, upload, size,  400 (tag: 404, a reference that names no manifest;
                 reference (a manifest's blob not linked)      reference: MANIFEST_BLOB_UNKNOWN)
    Oversized     manifest, upload (parts), blob (size)     413
    OutOfStep    (a chunk that does not continue an upload) 416 + the upload's Range
    Unsupported  (the operation)                           405
    Unavailable  (the backend or a remote; retry_after)    503, or 429 + Retry-After for a remote's rate limit
    Denied / Unauthorized  (the access decision)           403 / 401 + WWW-Authenticate
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Literal

Thing = Literal["blob", "manifest", "name", "upload", "digest", "tag", "size", "reference"]


class Problem(Exception):
    """A request cannot be answered as asked; `message` says exactly why, `detail` is the OCI error's detail."""

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        super().__init__(message or "")
        self.message = message
        self.detail = detail


class Unknown(Problem):
    """The blob, manifest, repository name or upload asked for is not there (or not in that repository)."""

    def __init__(self, what: Thing, message: str, detail: Any = None) -> None:
        super().__init__(message, detail)
        self.what = what


class Invalid(Problem):
    """What the client sent is malformed or does not match: a digest, manifest, name, tag, upload or size."""

    def __init__(self, what: Thing, message: str, detail: Any = None) -> None:
        super().__init__(message, detail)
        self.what = what


class Oversized(Problem):
    """What the client sent is larger than the edge takes (a manifest over 4 MiB, an upload of too many parts)."""

    def __init__(self, what: Thing, message: str, detail: Any = None) -> None:
        super().__init__(message, detail)
        self.what = what


class OutOfStep(Problem):
    """A chunk does not continue the upload (another request's chunk counted first): upload `upload_id` of
    `repository` holds `offset` bytes, which the answer tells so the client can resend from there."""

    def __init__(self, message: str, repository: str, upload_id: str, offset: int) -> None:
        super().__init__(message)
        self.repository, self.upload_id, self.offset = repository, upload_id, offset


class Unsupported(Problem):
    """The operation is not offered here (deletes disabled, a delete by tag)."""


class Unavailable(Problem):
    """The storage backend or a remote cannot answer now; worth a retry. `retry_after`: seconds a remote's rate
    limit asks to wait (then the client gets 429 with Retry-After)."""

    def __init__(self, message: str, detail: Any = None, retry_after: int | None = None) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after

    @classmethod
    def of(cls, cause: BaseException) -> "Unavailable":
        """A backend failure, naming its cause; a remote's rate limit (a cause with ``retry_after``) is kept."""
        retry_after = getattr(cause, "retry_after", None)
        if isinstance(retry_after, int):
            return cls(str(cause), retry_after=retry_after)
        return cls(f"storage backend unavailable: {cause}")

    @classmethod
    @contextlib.contextmanager
    def on(cls, *failures: type[Exception]) -> Iterator[None]:
        """Within the block, each of `failures` (a backend's `BackendError`, say) is raised as `Unavailable`."""
        try:
            yield
        except failures as error:
            raise cls.of(error) from error


class Denied(Problem):
    """The access decision refuses the request outright (no credentials would help)."""


class Unauthorized(Problem):
    """The request needs (other) credentials; `challenge` is the ``WWW-Authenticate`` value to answer with."""

    def __init__(self, challenge: str, detail: Any = None) -> None:
        super().__init__(None, detail)
        self.challenge = challenge
