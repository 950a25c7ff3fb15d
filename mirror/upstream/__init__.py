"""Storage backends behind one `Upstream` protocol: one small module per backend."""

from __future__ import annotations

from mirror.config import StorageConfig
from mirror.upstream.base import (
    BackendError, Listing, MultipartUpload, NotFound, ObjectInfo, Reader, Source, TooLarge, Upstream, Writer,
)
from mirror.upstream.instrumented import InstrumentedUpstream

__all__ = [
    "BackendError", "Listing", "MultipartUpload", "NotFound", "ObjectInfo", "Reader", "Source", "TooLarge", "Upstream",
    "Writer",
    "open_upstream",
]


def open_upstream(storage: StorageConfig, pool_size: int) -> InstrumentedUpstream:
    """The configured backend, instrumented with metrics. Call ``await upstream.start()`` before use."""
    if storage.driver == "s3":
        from mirror.upstream.s3 import S3Upstream

        backend: Upstream = S3Upstream(storage.s3, pool_size=pool_size)
    else:
        from mirror.upstream.filesystem import FilesystemUpstream

        backend = FilesystemUpstream(storage.filesystem.rootdirectory)
    return InstrumentedUpstream(backend)
