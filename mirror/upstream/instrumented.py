"""Counts every backend call and every byte read, whatever the backend.

A call the edge stopped waiting for (its task cancelled, or a range read closed before its last byte: a fill
stopped because nobody may wait for it) counts as ``cancelled``: it says nothing about the backend's health, so it is
kept out of ``error``, which the backend-errors alert watches.
"""

from __future__ import annotations

import asyncio
import builtins
from typing import AsyncIterator, Awaitable, BinaryIO, TypeVar

from mirror import metrics
from mirror.upstream.base import Listing, MultipartUpload, NotFound, ObjectInfo, Upstream

T = TypeVar("T")


class InstrumentedUpstream:
    """Wraps an Upstream; feeds ``mirror_backend_requests_total`` and ``mirror_backend_bytes_total``."""

    def __init__(self, inner: Upstream, reads: str | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self._reads = reads  # the op label of read and read_range, when not their own names

    def push_reads(self) -> "InstrumentedUpstream":
        """The same backend, its reads counted as ``op="push_read"``: pushed data read back to be verified and
        published (upload tails, uploads finished elsewhere), not the link and manifest reads of pulls."""
        return InstrumentedUpstream(self.inner, reads="push_read")

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def probe(self) -> None:
        await self._call("probe", self.inner.probe())

    async def stat(self, key: str) -> ObjectInfo:
        return await self._call("stat", self.inner.stat(key))

    async def read(self, key: str, max_size: int) -> bytes:
        op = self._reads or "read"
        data = await self._call(op, self.inner.read(key, max_size))
        metrics.backend_bytes.labels(op).inc(len(data))
        return data

    async def list(self, directory: str) -> Listing:
        return await self._call("list", self.inner.list(directory))

    async def put(self, key: str, data: bytes) -> None:
        await self._call("put", self.inner.put(key, data))
        metrics.backend_written_bytes.inc(len(data))

    async def delete(self, key: str) -> None:
        await self._call("delete", self.inner.delete(key))

    async def delete_tree(self, directory: str) -> None:
        await self._call("delete_tree", self.inner.delete_tree(directory))

    async def copy(self, source: str, destination: str, size: int) -> None:
        await self._call("copy", self.inner.copy(source, destination, size))

    async def start_multipart(self, key: str) -> str:
        return await self._call("start_multipart", self.inner.start_multipart(key))

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        etag = await self._call("put_part", self.inner.put_part(key, upload_id, number, body, size))
        metrics.backend_written_bytes.inc(size)
        return etag

    async def complete_multipart(self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]) -> None:
        await self._call("complete_multipart", self.inner.complete_multipart(key, upload_id, parts))

    async def list_parts(self, key: str, upload_id: str) -> dict[int, str]:
        return await self._call("list_parts", self.inner.list_parts(key, upload_id))

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await self._call("abort_multipart", self.inner.abort_multipart(key, upload_id))

    async def multipart_uploads(self, prefix: str) -> builtins.list[MultipartUpload]:
        return await self._call("multipart_uploads", self.inner.multipart_uploads(prefix))

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        size, chunks = await self._call("read_first", self.inner.read_first(key, length))
        return size, self._count(chunks)

    async def read_last(self, key: str, length: int) -> tuple[int, int, AsyncIterator[bytes]]:
        size, start, chunks = await self._call("read_last", self.inner.read_last(key, length))
        return size, start, self._count(chunks)

    @staticmethod
    async def _count(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        counted = metrics.backend_bytes.labels("read_range")
        async for chunk in chunks:
            counted.inc(len(chunk))
            yield chunk

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        status = "ok"
        op = self._reads or "read_range"
        counted = metrics.backend_bytes.labels(op)
        received = 0
        try:
            async for chunk in self.inner.read_range(key, start, end):
                counted.inc(len(chunk))
                received += len(chunk)
                yield chunk
        except NotFound:
            status = "not_found"
            raise
        except BaseException as error:
            # a reader that stops at the range's last byte (a fill's part) closes a complete read
            status = "ok" if isinstance(error, GeneratorExit) and received >= end - start else _failure(error)
            raise
        finally:
            metrics.backend_requests.labels(op, status).inc()

    @staticmethod
    async def _call(op: str, awaitable: Awaitable[T]) -> T:
        try:
            result = await awaitable
        except NotFound:
            metrics.backend_requests.labels(op, "not_found").inc()
            raise
        except BaseException as error:
            metrics.backend_requests.labels(op, _failure(error)).inc()
            raise
        metrics.backend_requests.labels(op, "ok").inc()
        return result


def _failure(error: BaseException) -> str:
    return "cancelled" if isinstance(error, (asyncio.CancelledError, GeneratorExit)) else "error"
