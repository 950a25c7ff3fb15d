"""What a storage backend offers: a small `Reader` and a `Writer` protocol, each method with its error contract.

Keys are storage-layout keys built by `mirror.layout` (``docker/registry/v2/...``); a backend prefixes its own
root directory and uses the key's text as it is. The keys a read path routes on are typed (`layout.BlobKey`,
`LayerLinkKey`, `RevisionLinkKey`, `TagLinkKey`: str subclasses carrying the repository, digest or tag they name),
so a wrapper (the remote tier, the peer reader) routes on their fields and never parses a key back.
Ranges are half-open: ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator, BinaryIO, Protocol

# Chunk size for streamed reads: large enough that per-chunk overhead does not matter (aiobotocore yields 1 KiB
# by default, which costs a Python iteration per KiB).
STREAM_CHUNK = 1024 * 1024


class NotFound(Exception):
    """The key does not exist in the backend."""


class BackendError(Exception):
    """The backend could not answer (unreachable, timed out, refused, 5xx). Worth a retry later."""


class TooLarge(Exception):
    """The object is larger than the caller is willing to hold in memory."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    key: str
    upload_id: str
    initiated: float  # seconds since the epoch


@dataclass(slots=True)
class Listing:
    """Immediate children of a directory key: sub-directory names and file names (no slashes).

    `present` is set by a backend with real directories (the filesystem) when the directory exists even if it is
    empty; on S3 a prefix exists exactly when something is listed under it, as registry:2's drivers see it.
    """

    directories: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    present: bool = False

    def exists(self) -> bool:
        """Whether registry:2 would find this directory (its driver's ``List`` answers without PathNotFound)."""
        return self.present or bool(self.directories or self.files)


class Reader(Protocol):
    """Read access to the registry:2 storage layout. Every method raises `BackendError` when the backend cannot
    answer right now (worth a retry later); those that name a missing key raise `NotFound`."""

    async def probe(self) -> None:
        """Return when the backend answers; `BackendError` otherwise."""

    async def stat(self, key: str) -> ObjectInfo:
        """Size of the object at `key`; `NotFound` when absent."""

    async def read(self, key: str, max_size: int) -> bytes:
        """The whole small object at `key` (links, manifests); `NotFound` when absent, `TooLarge` over `max_size`."""

    def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of the object at `key` in chunks of about STREAM_CHUNK.

        `NotFound` when absent; `BackendError` also when the object ends before `end` (never a short stream)."""

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        """The object's total size and a stream of its first `length` bytes, from one request; `NotFound` when absent.

        A fill learns the size and gets its first bytes in a single round trip (no stat first)."""

    async def read_last(self, key: str, length: int) -> tuple[int, int, AsyncIterator[bytes]]:
        """``(size, start, stream)``: the object's total size and a stream of bytes ``[start, size)``, from one
        request where the backend can (S3 answers a suffix Range with the total in Content-Range); `start` is
        ``max(0, size - length)``, or 0 from a reader that can only read from the start. `NotFound` when absent.

        A fill started by a suffix Range (an eStargz footer) learns the size and the client's bytes at once."""

    async def list(self, directory: str) -> Listing:
        """Immediate children of `directory`; an empty Listing (``exists()`` false) when it does not exist (never
        `NotFound`)."""


class Writer(Protocol):
    """Write access (pushes, deletes). Every method raises `BackendError` when the backend refuses or cannot be
    reached; deleting something absent is not an error."""

    async def put(self, key: str, data: bytes) -> None:
        """Write a small object (link, manifest, upload state) whole; readers never see half of it."""

    async def delete(self, key: str) -> None:
        """Remove the object at `key`; absent is fine."""

    async def delete_tree(self, directory: str) -> None:
        """Remove every object under `directory`, as registry:2's storage drivers delete a path; absent is fine."""

    async def copy(self, source: str, destination: str, size: int) -> None:
        """Server-side copy of a committed object (never UploadPartCopy: Storj's gateway lacks it); `NotFound`
        when `source` is absent."""

    async def start_multipart(self, key: str) -> str:
        """Begin a multipart write of `key`; returns its upload id."""

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        """Write part `number` (1-based; all but the last ≥ 5 MiB) of `size` bytes from a file (the `size` bytes
        from its position: a reused spool holds an older part's bytes after them) or bytes; returns its ETag, which
        names the part's content. `NotFound` when the multipart upload is gone."""

    async def list_parts(self, key: str, upload_id: str) -> dict[int, str]:
        """The parts the backend holds now, number → ETag; `NotFound` when the multipart upload is gone."""

    async def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Make `key` the concatenation of `parts` (number, ETag) in order; `NotFound` when the multipart upload
        is gone, `BackendError` when a part's ETag does not match what the backend holds."""

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard a multipart write and its parts; gone already is fine, and so is a failure (best effort)."""

    async def multipart_uploads(self, prefix: str) -> list[MultipartUpload]:
        """Multipart writes begun under `prefix` and neither completed nor aborted (for the upload purger)."""


class Source(Reader, Protocol):
    """A `Reader` with a name and a lifetime: what the edge cache reads through (a backend, or the peer reader
    wrapped around one, which is never written through)."""

    name: str

    async def start(self) -> None:
        """Open clients and pools; must not fail when the backend is unreachable."""

    async def close(self) -> None:
        """Release clients and pools."""


class Upstream(Source, Writer, Protocol):
    """One storage backend: a `Reader` and a `Writer` with a name and a lifetime."""
