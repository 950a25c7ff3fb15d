"""A peer's range goes out through sendfile as the fill lands: the spans asked of the fill reach one byte past the
range (so nothing waits for the fill's verification) and what is sent stops exactly at the range's end."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from mirror.api.peer import PeerSpan


class LandingBlob:
    """A fill of 301 bytes landing in three pieces; records the range it was asked for."""

    source = "fill"
    zero_copy = True
    size = 301

    def __init__(self) -> None:
        self.asked: tuple[int, int] | None = None

    async def spans(self, start: int, end: int, client_gone: "asyncio.Future[None]") -> AsyncIterator[tuple[int, int]]:
        self.asked = (start, end)
        for piece_start, piece_end in ((0, 100), (100, 200), (200, 301)):
            if piece_end > start and piece_start < end:
                yield max(piece_start, start), min(piece_end, end)

    def close(self) -> None:
        return None


def _spans(start: int, end: int) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    blob = LandingBlob()

    async def collect() -> list[tuple[int, int]]:
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        return [span async for span in PeerSpan(blob).spans(start, end, gone)]  # type: ignore[arg-type]

    return asyncio.run(collect()), blob.asked


def test_a_range_inside_the_blob_asks_one_byte_more_and_sends_exactly_the_range() -> None:
    assert _spans(50, 200) == ([(50, 100), (100, 200)], (50, 201))


def test_a_range_ending_mid_piece_is_cut_at_its_end() -> None:
    assert _spans(0, 150) == ([(0, 100), (100, 150)], (0, 151))


def test_a_range_to_the_end_of_the_blob_asks_for_no_byte_beyond_it() -> None:
    assert _spans(250, 301) == ([(250, 301)], (250, 301))


def test_a_peer_span_offers_zero_copy_exactly_when_its_reader_does() -> None:
    blob = LandingBlob()
    assert PeerSpan(blob).zero_copy is True  # type: ignore[arg-type]
    blob.zero_copy = False
    assert PeerSpan(blob).zero_copy is False  # type: ignore[arg-type]
