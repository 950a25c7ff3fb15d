"""`InstrumentedUpstream` counts a backend read the edge stopped waiting for as cancelled, not as an error (a
fill stopped because its repository check failed is no backend fault), over the real filesystem backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mirror import metrics
from mirror.upstream.filesystem import FilesystemUpstream
from mirror.upstream.instrumented import InstrumentedUpstream

KEY = "docker/registry/v2/blobs/sha256/aa/aa/data"


def _count(op: str, status: str) -> float:
    return metrics.REGISTRY.get_sample_value("mirror_backend_requests_total", {"op": op, "status": status}) or 0.0


def _backend(tmp_path: Path) -> InstrumentedUpstream:
    (tmp_path / KEY).parent.mkdir(parents=True)
    (tmp_path / KEY).write_bytes(b"x" * (4 << 20))
    return InstrumentedUpstream(FilesystemUpstream(tmp_path))


def test_read_cancelled_while_awaited_counts_as_cancelled(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    before = {status: _count("read", status) for status in ("cancelled", "error")}

    async def cancel_a_read() -> None:
        read = asyncio.ensure_future(backend.read(KEY, 8 << 20))
        await asyncio.sleep(0)  # the read is now waiting for its worker thread
        read.cancel()
        await asyncio.gather(read, return_exceptions=True)
        assert read.cancelled()

    asyncio.run(cancel_a_read())
    assert _count("read", "cancelled") == before["cancelled"] + 1
    assert _count("read", "error") == before["error"]


def test_range_read_closed_mid_stream_counts_as_cancelled(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    before = {status: _count("read_range", status) for status in ("cancelled", "error")}

    async def stop_reading() -> None:
        chunks = backend.read_range(KEY, 0, 4 << 20)
        assert await chunks.__anext__()
        await chunks.aclose()  # type: ignore[attr-defined]

    asyncio.run(stop_reading())
    assert _count("read_range", "cancelled") == before["cancelled"] + 1
    assert _count("read_range", "error") == before["error"]


def test_range_read_closed_after_its_last_byte_counts_as_ok(tmp_path: Path) -> None:
    """A fill's part stops iterating once it holds the part's last byte and closes the stream: a complete read."""
    backend = _backend(tmp_path)
    before = {status: _count("read_range", status) for status in ("ok", "cancelled")}

    async def read_to_the_end_then_close() -> None:
        chunks = backend.read_range(KEY, 0, 4 << 20)
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received >= 4 << 20:
                break  # what `fillfetch._write_chunks` does at the part's end
        await chunks.aclose()  # type: ignore[attr-defined]

    asyncio.run(read_to_the_end_then_close())
    assert _count("read_range", "ok") == before["ok"] + 1
    assert _count("read_range", "cancelled") == before["cancelled"]
