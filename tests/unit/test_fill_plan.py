import asyncio

from mirror.cache.parts import ConnectionBudget, Part, plan_parts

MIB = 1024 * 1024


def _spans(parts: list[Part]) -> list[tuple[int, int]]:
    return [(part.start, part.end) for part in parts]


def _check_cover(parts: list[Part], size: int) -> None:
    assert parts[0].start == 0 and parts[-1].end == size
    assert all(left.end == right.start for left, right in zip(parts, parts[1:]))


def test_first_part_is_small():
    parts = plan_parts(200 * MIB, 4 * MIB, 64 * MIB, 24, 2 * MIB)
    assert _spans(parts)[0] == (0, 4 * MIB)


def test_a_256_mib_blob_uses_the_whole_parallelism():
    parts = plan_parts(256 * MIB, 4 * MIB, 64 * MIB, 24, 2 * MIB)
    _check_cover(parts, 256 * MIB)
    assert len(parts) - 1 >= 24


def test_a_48_mib_blob_is_cut_into_parts_no_smaller_than_the_floor():
    parts = plan_parts(48 * MIB, 4 * MIB, 64 * MIB, 24, 2 * MIB)
    _check_cover(parts, 48 * MIB)
    assert len(parts) >= 20
    assert min(part.end - part.start for part in parts[1:]) >= 2 * MIB - 64 * 1024


def test_parts_never_exceed_the_part_size():
    parts = plan_parts(3 * 1024 * MIB, 4 * MIB, 64 * MIB, 8, 2 * MIB)
    _check_cover(parts, 3 * 1024 * MIB)
    assert max(part.end - part.start for part in parts) <= 64 * MIB


def test_parts_do_not_straddle_segment_boundaries():
    segment = 64 * MIB
    parts = plan_parts(1024 * MIB + 12345, 4 * MIB, segment, 24, 2 * MIB)
    _check_cover(parts, 1024 * MIB + 12345)
    assert all(part.start // segment == (part.end - 1) // segment for part in parts)


def test_small_blob_is_one_part():
    assert _spans(plan_parts(1000, 4 * MIB, 64 * MIB, 24, 2 * MIB)) == [(0, 1000)]


def test_empty_blob_has_no_parts():
    assert plan_parts(0, 4 * MIB, 64 * MIB, 24, 2 * MIB) == []


def test_part_is_complete_when_all_its_bytes_are_written():
    part = Part(10, 20)
    assert not part.complete
    part.written = 10
    assert part.complete


def test_budget_gives_a_freed_connection_to_an_urgent_waiter_first():
    async def scenario() -> list[str]:
        budget = ConnectionBudget(1)
        await budget.acquire("a", lambda: False)
        order: list[str] = []

        async def take(owner: str, urgent: bool) -> None:
            await budget.acquire(owner, lambda: urgent)
            order.append(owner)

        waiting = [asyncio.create_task(take("b", False)), asyncio.create_task(take("c", True))]
        await asyncio.sleep(0)
        budget.release("a")
        await asyncio.sleep(0)
        budget.release(order[0])
        await asyncio.gather(*waiting)
        return order

    assert asyncio.run(scenario()) == ["c", "b"]


def test_budget_prefers_the_fill_holding_fewer_connections():
    async def scenario() -> str:
        budget = ConnectionBudget(4)
        for owner in ("big", "big", "big", "small"):
            await budget.acquire(owner, lambda: False)
        winner: list[str] = []

        async def take(owner: str) -> None:
            await budget.acquire(owner, lambda: False)
            winner.append(owner)

        waiting = [asyncio.create_task(take("big")), asyncio.create_task(take("small"))]
        await asyncio.sleep(0)
        budget.release("big")
        await asyncio.sleep(0)
        for task in waiting:
            task.cancel()
        return winner[0]

    assert asyncio.run(scenario()) == "small"


def test_budget_never_grants_more_than_its_limit():
    async def scenario() -> int:
        budget = ConnectionBudget(2)
        peak = 0

        async def work(owner: int) -> None:
            nonlocal peak
            await budget.acquire(owner, lambda: False)
            peak = max(peak, budget.in_use)
            await asyncio.sleep(0.001)
            budget.release(owner)

        await asyncio.gather(*(work(index % 3) for index in range(20)))
        return peak

    assert asyncio.run(scenario()) == 2
