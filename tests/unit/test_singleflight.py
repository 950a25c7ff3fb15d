"""SingleFlight: concurrent identical lookups share one call, and no caller's fate is forced on another.

Each step waits for an event it can observe (the shared work has started, a cancelled caller has finished), so
the order of the steps is fixed by the test, not by how long a sleep lasts.
"""

from __future__ import annotations

import asyncio

import pytest

from mirror.cache.singleflight import SingleFlight


class HeldWork:
    """Shared work that tells when it has started and returns `value` only when released."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return self.value


async def _callers(flight: SingleFlight[int], work: HeldWork, count: int) -> list["asyncio.Task[int]"]:
    """`count` callers of one key, all joined: the work starts only after every caller created with it asked."""
    callers = [asyncio.create_task(flight.do("key", work)) for _ in range(count)]
    await asyncio.wait_for(work.started.wait(), 5)
    return callers


def test_concurrent_callers_share_one_call():
    async def scenario() -> tuple[list[int], int]:
        flight: SingleFlight[int] = SingleFlight()
        work = HeldWork(7)
        callers = await _callers(flight, work, 5)
        work.release.set()
        return list(await asyncio.gather(*callers)), work.calls

    results, calls = asyncio.run(scenario())
    assert results == [7] * 5
    assert calls == 1


def test_a_cancelled_leader_does_not_cancel_its_followers():
    async def scenario() -> int:
        flight: SingleFlight[int] = SingleFlight()
        work = HeldWork(42)
        leader, follower = await _callers(flight, work, 2)
        leader.cancel()
        await asyncio.gather(leader, return_exceptions=True)  # the leader has gone
        work.release.set()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await asyncio.wait_for(follower, 5)

    assert asyncio.run(scenario()) == 42


def test_a_cancelled_follower_does_not_cancel_the_leader():
    async def scenario() -> int:
        flight: SingleFlight[int] = SingleFlight()
        work = HeldWork(5)
        leader, follower = await _callers(flight, work, 2)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)  # the follower has gone
        work.release.set()
        return await asyncio.wait_for(leader, 5)

    assert asyncio.run(scenario()) == 5


def test_a_failure_reaches_every_caller_and_the_next_call_runs_again():
    async def scenario() -> tuple[list[BaseException | int], int]:
        flight: SingleFlight[int] = SingleFlight()
        calls = 0
        started, release = asyncio.Event(), asyncio.Event()

        async def failing() -> int:
            nonlocal calls
            calls += 1
            started.set()
            await release.wait()
            raise LookupError("gone")

        callers = [asyncio.create_task(flight.do("key", failing)) for _ in range(3)]
        await asyncio.wait_for(started.wait(), 5)
        release.set()
        results = await asyncio.gather(*callers, return_exceptions=True)
        await asyncio.gather(flight.do("key", failing), return_exceptions=True)
        return list(results), calls

    results, calls = asyncio.run(scenario())
    assert all(isinstance(result, LookupError) for result in results)
    assert calls == 2


def test_the_shared_work_stops_when_every_caller_has_gone():
    async def scenario() -> bool:
        flight: SingleFlight[int] = SingleFlight()
        started, stopped = asyncio.Event(), asyncio.Event()

        async def work() -> int:
            started.set()
            try:
                await asyncio.Event().wait()  # never set: only a cancellation ends it
            except asyncio.CancelledError:
                stopped.set()
                raise
            return 1

        callers = [asyncio.create_task(flight.do("key", work)) for _ in range(3)]
        await asyncio.wait_for(started.wait(), 5)
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        await asyncio.wait_for(stopped.wait(), 5)
        return stopped.is_set()

    assert asyncio.run(scenario())
