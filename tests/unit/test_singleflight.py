"""SingleFlight: concurrent identical lookups share one call, and no caller's fate is forced on another."""

from __future__ import annotations

import asyncio

import pytest

from mirror.cache.singleflight import SingleFlight


def test_concurrent_callers_share_one_call():
    async def scenario() -> tuple[list[int], int]:
        flight: SingleFlight[int] = SingleFlight()
        calls = 0
        release = asyncio.Event()

        async def work() -> int:
            nonlocal calls
            calls += 1
            await release.wait()
            return 7

        callers = [asyncio.create_task(flight.do("key", work)) for _ in range(5)]
        await asyncio.sleep(0.01)
        release.set()
        return list(await asyncio.gather(*callers)), calls

    results, calls = asyncio.run(scenario())
    assert results == [7] * 5
    assert calls == 1


def test_a_cancelled_leader_does_not_cancel_its_followers():
    async def scenario() -> int:
        flight: SingleFlight[int] = SingleFlight()
        release = asyncio.Event()

        async def work() -> int:
            await release.wait()
            return 42

        leader = asyncio.create_task(flight.do("key", work))
        await asyncio.sleep(0.01)
        follower = asyncio.create_task(flight.do("key", work))
        await asyncio.sleep(0.01)
        leader.cancel()
        await asyncio.sleep(0.01)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await asyncio.wait_for(follower, 5)

    assert asyncio.run(scenario()) == 42


def test_a_cancelled_follower_does_not_cancel_the_leader():
    async def scenario() -> int:
        flight: SingleFlight[int] = SingleFlight()
        release = asyncio.Event()

        async def work() -> int:
            await release.wait()
            return 5

        leader = asyncio.create_task(flight.do("key", work))
        await asyncio.sleep(0.01)
        follower = asyncio.create_task(flight.do("key", work))
        await asyncio.sleep(0.01)
        follower.cancel()
        await asyncio.sleep(0.01)
        release.set()
        return await asyncio.wait_for(leader, 5)

    assert asyncio.run(scenario()) == 5


def test_a_failure_reaches_every_caller_and_the_next_call_runs_again():
    async def scenario() -> tuple[list[BaseException | int], int]:
        flight: SingleFlight[int] = SingleFlight()
        calls = 0

        async def failing() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            raise LookupError("gone")

        results = await asyncio.gather(*(flight.do("key", failing) for _ in range(3)), return_exceptions=True)
        await asyncio.gather(flight.do("key", failing), return_exceptions=True)
        return list(results), calls

    results, calls = asyncio.run(scenario())
    assert all(isinstance(result, LookupError) for result in results)
    assert calls == 2


def test_the_shared_work_stops_when_every_caller_has_gone():
    async def scenario() -> bool:
        flight: SingleFlight[int] = SingleFlight()
        stopped = asyncio.Event()

        async def work() -> int:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                stopped.set()
                raise
            return 1

        callers = [asyncio.create_task(flight.do("key", work)) for _ in range(3)]
        await asyncio.sleep(0.01)
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        await asyncio.wait_for(stopped.wait(), 5)
        return stopped.is_set()

    assert asyncio.run(scenario())
