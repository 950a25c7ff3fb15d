import asyncio

from mirror.cache.fillplan import ConnectionBudget, Part, PartTable, plan_parts, steals_allowed

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


def _grant_order(*waiters: tuple[str, bool, bool | None]) -> list[str]:
    """A budget of one connection, held by "a"; each waiter ``(owner, urgent, background)`` asks for it in turn
    (background None: left out of the call). "a" gives it back, then the first waiter granted does: the owners in
    the order they were granted."""

    async def scenario() -> list[str]:
        budget = ConnectionBudget(1)
        await budget.acquire("a", lambda: False)
        order: list[str] = []

        async def take(owner: str, urgent: bool, background: bool | None) -> None:
            await budget.acquire(owner, lambda: urgent, None if background is None else lambda: background)
            order.append(owner)

        waiting = [asyncio.create_task(take(*waiter)) for waiter in waiters]
        await asyncio.sleep(0)
        budget.release("a")
        await asyncio.sleep(0)
        budget.release(order[0])
        await asyncio.gather(*waiting)
        return order

    return asyncio.run(scenario())


def test_budget_gives_a_freed_connection_to_an_urgent_waiter_first():
    assert _grant_order(("b", False, None), ("c", True, None)) == ["c", "b"]


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


def test_budget_serves_a_background_fill_after_every_other_waiter():
    # the prefetch asked first and holds no connection; the client's fill comes later
    assert _grant_order(("prefetch", False, True), ("client", False, False)) == ["client", "prefetch"]


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


def _table(*spans: tuple[int, int], steals: int = 8) -> PartTable:
    return PartTable([Part(start, end) for start, end in spans], min_part_size=2 * MIB, steals=steals)


def test_a_wanted_byte_in_a_part_nobody_fetches_starts_a_part_of_its_own():
    table = _table((0, 4 * MIB), (4 * MIB, 36 * MIB))
    table[0].started = True
    picked = table.pick([20 * MIB])
    assert (picked.start, picked.end) == (20 * MIB, 22 * MIB), "a short GET for the client"
    assert _spans(table.parts) == [(0, 4 * MIB), (4 * MIB, 20 * MIB), (20 * MIB, 22 * MIB), (22 * MIB, 36 * MIB)]
    assert not table[3].started


def test_a_wanted_byte_far_ahead_of_a_running_get_cuts_it_short():
    table = _table((0, 64 * MIB))
    table[0].started, table[0].fetched = True, 1 * MIB
    picked = table.pick([40 * MIB])
    assert (picked.start, picked.end) == (40 * MIB, 42 * MIB)
    assert table[0].end == 40 * MIB, "the running GET stops where the new part starts"


def test_a_wanted_byte_just_ahead_of_a_running_get_waits_for_it():
    table = _table((0, 64 * MIB))
    table[0].started, table[0].fetched = True, 10 * MIB
    assert not table.has_urgent([10 * MIB + 4096])
    assert table.pick([10 * MIB + 4096]) is not None  # the idle connection steals the tail instead
    assert table[0].end < 64 * MIB


def test_wanted_positions_in_one_part_each_start_their_own_part():
    table = _table((0, 64 * MIB))
    first = table.pick([8 * MIB, 30 * MIB])
    assert (first.start, first.end) == (8 * MIB, 10 * MIB)
    assert any(part.start == 30 * MIB and not part.started for part in table)


def test_idle_connections_take_the_second_half_of_the_slowest_part():
    table = _table((0, 16 * MIB), (16 * MIB, 32 * MIB))  # minimum part 2 MiB: 8 MiB left is worth a steal
    for part in table:
        part.started = True
    table[0].fetched, table[1].fetched = 12 * MIB, 2 * MIB
    stolen = table.pick([])
    assert (stolen.start, stolen.end) == (25 * MIB, 32 * MIB)  # halfway through its 14 MiB still to come
    assert table[1].end == 25 * MIB


def test_a_fill_cuts_running_gets_for_idle_connections_only_as_often_as_it_was_allowed():
    table = _table((0, 32 * MIB), (32 * MIB, 64 * MIB), steals=1)
    for part in table:
        part.started = True
    assert table.pick([]) is not None
    assert table.has_work() is False
    assert table.pick([]) is None, "a second steal would cut another running GET"


def test_a_blob_may_have_one_steal_per_quarter_gib():
    assert [steals_allowed(size) for size in (128 * MIB, 256 * MIB, 1024 * MIB)] == [0, 1, 4]


def test_a_wanted_byte_far_ahead_still_cuts_a_running_get_when_no_steal_is_left():
    table = _table((0, 64 * MIB), steals=0)
    table[0].started, table[0].fetched = True, 1 * MIB
    picked = table.pick([40 * MIB])
    assert (picked.start, picked.end) == (40 * MIB, 42 * MIB), "a client waits there: not a steal"


def test_no_stealing_below_four_minimum_parts():
    table = _table((0, 16 * MIB))
    table[0].started, table[0].fetched = True, 9 * MIB
    assert table.pick([]) is None


def test_available_end_follows_written_bytes_across_parts():
    table = _table((0, 4 * MIB), (4 * MIB, 8 * MIB), (8 * MIB, 12 * MIB))
    table[0].written = 4 * MIB
    table[1].written = 1 * MIB
    table[2].written = 4 * MIB
    assert table.available_end(0) == 5 * MIB
    assert table.available_end(8 * MIB) == 12 * MIB


def test_budget_keeps_its_reserve_for_connections_a_client_waits_on():
    async def scenario() -> tuple[bool, bool]:
        budget = ConnectionBudget(4, reserve=1)
        for _ in range(3):
            await budget.acquire("read-ahead", lambda: False)
        blocked = asyncio.create_task(budget.acquire("read-ahead", lambda: False))
        await asyncio.sleep(0)
        await asyncio.wait_for(budget.acquire("range", lambda: True), 1)
        read_ahead_waits = not blocked.done()
        blocked.cancel()
        return read_ahead_waits, budget.in_use == 4

    assert asyncio.run(scenario()) == (True, True)


def test_a_fill_alone_plans_its_whole_parallelism():
    async def scenario() -> int:
        budget = ConnectionBudget(32)
        await budget.acquire("only", lambda: True)
        return budget.fair_share(24, "only", unknown_demand)

    assert asyncio.run(scenario()) == 24


def test_a_fill_among_others_plans_its_share_of_the_budget():
    async def scenario() -> tuple[int, int]:
        budget = ConnectionBudget(32)
        for owner in range(8):
            await budget.acquire(owner, lambda: True)
        eight = budget.fair_share(24, 0, unknown_demand)
        for owner in range(8, 24):
            await budget.acquire(owner, lambda: True)
        return eight, budget.fair_share(24, 0, unknown_demand)

    assert asyncio.run(scenario()) == (4, 2)  # 32 / 8; 24 fills would get 1 each, the floor is 2


def test_a_fill_beside_fills_near_their_end_plans_for_the_connections_they_leave():
    async def scenario() -> int:
        budget = ConnectionBudget(32)
        for owner in ("big", "small-a", "small-b"):
            await budget.acquire(owner, lambda: True)
        return budget.fair_share(24, "big", {"small-a": 0, "small-b": 0}.get)

    # A layer pulled beside two small ones (their last part each): not 32 / 3, but all it wants.
    assert asyncio.run(scenario()) == 24


def test_a_fill_beside_fills_with_work_left_still_plans_only_its_share():
    async def scenario() -> int:
        budget = ConnectionBudget(32)
        for owner in range(4):
            await budget.acquire(owner, lambda: True)
        return budget.fair_share(24, 0, {1: 29, 2: 29, 3: 1}.get)

    # 32 - 8 - 8 - 2: two fills could use more than their share, one 2 (the connection it holds + its last part)
    assert asyncio.run(scenario()) == 14


def unknown_demand(owner: object) -> None:
    return None
