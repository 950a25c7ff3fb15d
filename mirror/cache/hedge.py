"""Tail cutting: a ranged GET whose first byte is late is raced by a second GET for the same range.

Storj's time to first byte is long-tailed: one GET in a few waits several times the median, and a fill of many
parts almost always draws one. A part whose first byte has not come after ``1.5 × p75`` of the recent first-byte
times (taken from the last `WINDOW` GETs, once `MIN_SAMPLES` are known) opens a second GET for the same bytes if
the node's connection budget has a free connection right now; whichever answers first is read, the other is
closed. A loser that had started to answer wastes what was in flight on its connection (up to about a MiB), so a
fill hedges at most once per `HEDGE_BYTES` of its blob: backend bytes stay within 2 % of the blob.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import AsyncIterator, Callable

from mirror import metrics
from mirror.cache.fillplan import ConnectionBudget

WINDOW = 200
MIN_SAMPLES = 16
MIN_DELAY = 0.05
HEDGE_BYTES = 50 * 1024 * 1024

Opener = Callable[[], AsyncIterator[bytes]]


class FirstByteTimes:
    """The recent first-byte times of ranged GETs, and the hedging delay they imply."""

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=WINDOW)

    def observe(self, seconds: float) -> None:
        self._samples.append(seconds)

    def hedge_delay(self) -> float | None:
        """Seconds to wait for a first byte before hedging; None while too few GETs were seen."""
        if len(self._samples) < MIN_SAMPLES:
            return None
        ordered = sorted(self._samples)
        return max(MIN_DELAY, 1.5 * ordered[int(0.75 * (len(ordered) - 1))])


async def open_hedged(
    open_stream: Opener, times: FirstByteTimes, budget: ConnectionBudget, owner: object, allowed: Callable[[], bool]
) -> tuple[AsyncIterator[bytes], bytes]:
    """Open a stream and wait for its first chunk, hedging as described above if `allowed()` (asked only when a
    hedge is due; it counts them). The stream returned holds `owner`'s one budget connection (a hedge's extra
    connection is given back when the race is decided)."""
    started = time.monotonic()
    primary = open_stream()
    first = asyncio.ensure_future(anext(primary))
    delay = times.hedge_delay()
    if delay is not None:
        await asyncio.wait({first}, timeout=delay)
    if first.done() or delay is None or not allowed() or not budget.try_acquire(owner):
        try:
            chunk = await first
        except BaseException:
            await _close(primary, first)
            raise
        times.observe(time.monotonic() - started)
        return primary, chunk
    hedge_started = time.monotonic()
    secondary = open_stream()
    second = asyncio.ensure_future(anext(secondary))
    racers: dict[asyncio.Future[bytes], AsyncIterator[bytes]] = {first: primary, second: secondary}
    try:
        winner = await _first_success(first, second)
        loser = second if winner is first else first
        await _close(racers[loser], loser)
    except BaseException:
        for future, stream in racers.items():
            await _close(stream, future)
        raise
    finally:
        budget.release(owner)  # the hedge's extra connection, whatever happened
    metrics.fill_hedges.labels("won" if winner is second else "lost").inc()
    times.observe(time.monotonic() - (hedge_started if winner is second else started))
    return racers[winner], winner.result()


async def _first_success(first: "asyncio.Future[bytes]", second: "asyncio.Future[bytes]") -> "asyncio.Future[bytes]":
    """The first of two futures to succeed; the first error if both fail."""
    pending = {first, second}
    failure: BaseException | None = None
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for future in done:
            if future.exception() is None:
                return future
            failure = failure or future.exception()
    assert failure is not None
    raise failure


async def _close(stream: AsyncIterator[bytes], pending: "asyncio.Future[bytes]") -> None:
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await stream.aclose()  # type: ignore[attr-defined]  # every stream here is an async generator; typed AsyncIterator


def hedges_allowed(size: int) -> int:
    """Races a fill of `size` bytes may start: one per HEDGE_BYTES, none for a smaller blob (or one whose size
    is not known yet: its first GET). Allowing one for small blobs and first GETs (tried) put the herd's bucket
    reads at 1.04–1.08 × the image in the harness, against 1.00 without."""
    return size // HEDGE_BYTES


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The rest of a stream whose first chunk `open_hedged` already took."""
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]  # `rest` is an async generator; typed AsyncIterator
