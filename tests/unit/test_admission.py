"""The admission rules of `mirror.admission`: the global cap, the per-address share, and the probe reserve."""

from __future__ import annotations

from mirror.admission import CLIENT_FULL, FULL, PROBE_RESERVE, PROBE_RESERVE_PER_CLIENT, Admission, Admitted


def test_a_client_past_its_share_is_limited_while_another_is_served() -> None:
    admission = Admission(max_connections=8, max_per_client=2)
    assert [admission.admit("a") for _ in range(2)] == [Admitted("a", None)] * 2
    assert admission.admit("a") == Admitted("a", CLIENT_FULL)
    assert admission.admit("b") == Admitted("b", None)


def test_past_the_global_cap_every_client_is_limited() -> None:
    admission = Admission(max_connections=2, max_per_client=64)
    admission.admit("a")
    admission.admit("b")
    assert admission.admit("c") == Admitted("c", FULL)


def test_past_its_reserve_share_a_client_is_refused() -> None:
    admission = Admission(max_connections=1, max_per_client=1)
    admission.admit("a")
    for _ in range(PROBE_RESERVE_PER_CLIENT):
        assert admission.admit("a") == Admitted("a", CLIENT_FULL)
    assert admission.admit("a") == CLIENT_FULL


def test_past_the_whole_reserve_everyone_is_refused() -> None:
    admission = Admission(max_connections=1, max_per_client=1)
    admission.admit("x")
    for index in range(PROBE_RESERVE):
        assert isinstance(admission.admit(f"c{index}"), Admitted)
    assert admission.admit("late") == FULL


def test_released_connections_make_room_again() -> None:
    admission = Admission(max_connections=1, max_per_client=1)
    first = admission.admit("a")
    limited = admission.admit("a")
    assert isinstance(first, Admitted) and isinstance(limited, Admitted)
    admission.release(limited)
    admission.release(first)
    assert admission.admit("a") == Admitted("a", None)
    assert admission.open == 1 and admission.limited_open == 0


def test_the_share_is_never_more_than_half_the_cap() -> None:
    assert Admission(max_connections=4, max_per_client=64).max_per_client == 2
    assert Admission(max_connections=1, max_per_client=64).max_per_client == 1
