import asyncio

from mirror.cache.hedge import MIN_SAMPLES, FirstByteTimes, open_hedged
from mirror.cache.fillplan import ConnectionBudget


def _times(seconds: float) -> FirstByteTimes:
    times = FirstByteTimes()
    for _ in range(MIN_SAMPLES):
        times.observe(seconds)
    return times


class _Streams:
    """Stand-in ranged GETs: the n-th opened waits `delays[n]` before its first chunk."""

    def __init__(self, *delays: float) -> None:
        self.delays = list(delays)
        self.opened = 0
        self.closed: list[int] = []

    def open(self):  # type: ignore[no-untyped-def]
        number = self.opened
        self.opened += 1

        async def stream():  # type: ignore[no-untyped-def]
            try:
                await asyncio.sleep(self.delays[number])
                yield f"stream {number}".encode()
                yield b"rest"
            finally:
                self.closed.append(number)

        return stream()


def test_no_hedging_before_enough_first_byte_times_are_known():
    async def scenario():  # type: ignore[no-untyped-def]
        streams = _Streams(0.05, 0.0)
        budget = ConnectionBudget(4)
        await budget.acquire("fill", lambda: False)
        _, first = await open_hedged(streams.open, FirstByteTimes(), budget, "fill", lambda: True)
        return first, streams.opened

    assert asyncio.run(scenario()) == (b"stream 0", 1)


def test_a_late_first_byte_is_raced_and_the_loser_is_closed():
    async def scenario():  # type: ignore[no-untyped-def]
        streams = _Streams(2.0, 0.0)
        budget = ConnectionBudget(4)
        await budget.acquire("fill", lambda: False)
        stream, first = await open_hedged(streams.open, _times(0.01), budget, "fill", lambda: True)
        rest = [chunk async for chunk in stream]
        return first, rest, streams.closed, budget.held("fill")

    first, rest, closed, held = asyncio.run(scenario())
    assert first == b"stream 1" and rest == [b"rest"]
    assert 0 in closed
    assert held == 1, "the hedge's extra connection must be given back"


def test_no_hedge_when_the_budget_has_no_free_connection():
    async def scenario():  # type: ignore[no-untyped-def]
        streams = _Streams(0.2, 0.0)
        budget = ConnectionBudget(1)
        await budget.acquire("fill", lambda: False)
        _, first = await open_hedged(streams.open, _times(0.01), budget, "fill", lambda: True)
        return first, streams.opened

    assert asyncio.run(scenario()) == (b"stream 0", 1)


def test_hedge_delay_follows_the_observed_distribution():
    times = FirstByteTimes()
    for index in range(100):
        times.observe(0.4 if index % 5 == 0 else 0.08)
    assert 0.1 <= (times.hedge_delay() or 0) <= 0.2


def test_no_hedge_when_the_fill_has_used_its_share():
    async def scenario():  # type: ignore[no-untyped-def]
        streams = _Streams(0.2, 0.0)
        budget = ConnectionBudget(4)
        await budget.acquire("fill", lambda: False)
        _, first = await open_hedged(streams.open, _times(0.01), budget, "fill", lambda: False)
        return first, streams.opened

    assert asyncio.run(scenario()) == (b"stream 0", 1)


def test_a_blob_under_hedge_bytes_is_never_raced():
    from mirror.cache.hedge import hedges_allowed

    assert hedges_allowed(48 * 2**20) == 0


def test_big_blobs_hedge_once_per_hedge_bytes():
    from mirror.cache.hedge import hedges_allowed
    from mirror.cache.hedge import HEDGE_BYTES

    assert hedges_allowed(5 * HEDGE_BYTES + 1) == 5


class _PacedStreams:
    """Stand-in ranged GETs of `size` bytes in `chunk`-byte pieces, one piece per `pace` seconds after a first byte
    that takes `first_byte[n]` seconds for the n-th opened; counts the bytes each one delivered to its reader."""

    def __init__(self, size: int, chunk: int, pace: float, *first_byte: float) -> None:
        self.size, self.chunk, self.pace = size, chunk, pace
        self.first_byte = list(first_byte)
        self.delivered: list[int] = []
        self.closed_at: dict[int, int] = {}  # stream → bytes the winner had delivered when it was closed
        self.opened = 0

    def open(self):  # type: ignore[no-untyped-def]
        number = self.opened
        self.opened += 1
        self.delivered.append(0)

        async def stream():  # type: ignore[no-untyped-def]
            try:
                await asyncio.sleep(self.first_byte[number])
                for _ in range(0, self.size, self.chunk):
                    self.delivered[number] += self.chunk
                    yield b"x" * self.chunk
                    await asyncio.sleep(self.pace)
            finally:
                self.closed_at[number] = sum(self.delivered) - self.delivered[number]

        return stream()


def test_a_race_is_decided_at_the_winners_first_byte_and_the_loser_reads_nothing_more():
    async def scenario():  # type: ignore[no-untyped-def]
        streams = _PacedStreams(64 * 1024 * 1024, 1024 * 1024, 0.001, 0.5, 0.0)  # primary slow to its first byte
        budget = ConnectionBudget(4)
        await budget.acquire("fill", lambda: False)
        stream, first = await open_hedged(streams.open, _times(0.01), budget, "fill", lambda: True)
        loser_closed_when = dict(streams.closed_at)
        read = len(first) + sum([len(chunk) async for chunk in stream])
        return streams, loser_closed_when, read

    streams, loser_closed_when, read = asyncio.run(scenario())
    assert loser_closed_when == {0: 1024 * 1024}, "the slow primary is closed once the hedge's first byte is in"
    assert streams.delivered[0] == 0 and read == streams.size
    assert sum(streams.delivered) == streams.size, "the part crossed the backend once"
