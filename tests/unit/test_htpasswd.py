"""htpasswd entries that are not bcrypt hashes never log in, and an unknown user costs what a known one costs."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import statistics
import time
from pathlib import Path

import bcrypt
import pytest

from mirror import metrics
from mirror.auth import htpasswd
from mirror.auth.htpasswd import Htpasswd
from tests.support.clock import FakeClock

# The password of the dummy hash that main's htpasswd.py checked unknown users against: with an entry `bob:`
# (an empty hash), bob logged in with it.
OLD_DUMMY_PASSWORD = "not a password of anyone"
SHA_HASH = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
APR1_HASH = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _check(users: Htpasswd, user: str, password: str) -> str | None:
    return asyncio.run(users.check(_basic(user, password)))


def _hash(password: bytes, cost: int) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost)).decode()


@pytest.fixture()
def file_with_bad_entries(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(f"# users\nops:{_hash(b'ops-pw', 4)}\nbob:\nplain:{SHA_HASH}\napr:{APR1_HASH}\n")
    return path


@pytest.mark.parametrize("password", [OLD_DUMMY_PASSWORD, ""])
def test_an_entry_with_an_empty_hash_never_authenticates(file_with_bad_entries, password):
    users = Htpasswd(str(file_with_bad_entries))
    assert _check(users, "bob", password) is None
    assert _check(users, "ops", "ops-pw") == "ops"


def test_each_refused_entry_is_named_in_a_warning_with_file_and_line_but_never_its_hash(file_with_bad_entries, caplog):
    with caplog.at_level(logging.WARNING, logger="mirror.auth.htpasswd"):
        Htpasswd(str(file_with_bad_entries))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings
    for line, user in ((3, "bob"), (4, "plain"), (5, "apr")):
        assert any(f"{file_with_bad_entries} line {line} (user '{user}')" in warning for warning in warnings), warnings
    assert not any(secret in warning for warning in warnings for secret in (SHA_HASH, APR1_HASH, "W6ph5M", "apr1"))


def test_refused_entries_are_counted_as_of_the_last_read(file_with_bad_entries, monkeypatch):
    users = Htpasswd(str(file_with_bad_entries))
    assert metrics.REGISTRY.get_sample_value("mirror_auth_htpasswd_refused_entries") == 3
    file_with_bad_entries.write_text(f"ops:{_hash(b'ops-pw', 4)}\nbob:\n")
    later = time.time() + 5
    os.utime(file_with_bad_entries, (later, later))
    monkeypatch.setattr(htpasswd, "STAT_INTERVAL_SECONDS", 0.0)
    assert _check(users, "ops", "ops-pw") == "ops"
    assert metrics.REGISTRY.get_sample_value("mirror_auth_htpasswd_refused_entries") == 1


def test_the_dummy_cost_is_the_cost_most_entries_use():
    assert htpasswd.dummy_cost([10, 12, 10]) == 10
    assert htpasswd.dummy_cost([12, 10]) == 12
    assert htpasswd.dummy_cost([5]) == 5


def _median_seconds_of_wrong_passwords(users: Htpasswd, known: str, tries: int) -> tuple[float, float]:
    """Median time of a wrong password for `known` and for unknown users, tried alternately."""

    async def timed(user: str, password: str) -> float:
        started = time.perf_counter()
        assert await users.check(_basic(user, password)) is None
        return time.perf_counter() - started

    async def run() -> tuple[list[float], list[float]]:
        known_times, unknown_times = [], []
        for attempt in range(tries):
            known_times.append(await timed(known, f"wrong-{attempt}"))
            unknown_times.append(await timed(f"nobody-{attempt}", f"wrong-{attempt}"))
        return known_times, unknown_times

    known_times, unknown_times = asyncio.run(run())
    return statistics.median(known_times), statistics.median(unknown_times)


def test_a_wrong_password_costs_an_unknown_user_what_it_costs_a_known_user_at_cost_10(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{_hash(b'alice-pw', 10)}\ncarol:{_hash(b'carol-pw', 10)}\n")
    known, unknown = _median_seconds_of_wrong_passwords(Htpasswd(str(path)), "alice", tries=9)
    assert 0.5 < unknown / known < 2, f"unknown user {unknown * 1000:.1f} ms, known user {known * 1000:.1f} ms"


def test_the_dummy_hash_follows_the_cost_of_the_entries_when_the_file_is_re_read(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{_hash(b'alice-pw', 4)}\n")
    clock = FakeClock()
    users = Htpasswd(str(path), clock=clock)
    path.write_text(f"alice:{_hash(b'alice-pw', 9)}\n")
    later = time.time() + 5
    os.utime(path, (later, later))
    clock.advance(htpasswd.STAT_INTERVAL_SECONDS)
    known, unknown = _median_seconds_of_wrong_passwords(users, "alice", tries=7)
    assert 0.5 < unknown / known < 2, f"unknown user {unknown * 1000:.1f} ms, known user {known * 1000:.1f} ms"


def test_a_verified_header_is_remembered_but_every_wrong_password_costs_a_full_check(file_with_bad_entries, monkeypatch):
    checks = []
    real = htpasswd._bcrypt_matches
    monkeypatch.setattr(htpasswd, "_bcrypt_matches", lambda password, hashed: checks.append(hashed) or real(password, hashed))
    users = Htpasswd(str(file_with_bad_entries))
    assert [_check(users, "ops", "ops-pw") for _ in range(3)] == ["ops"] * 3
    assert len(checks) == 1
    for user in ("ops", "ops", "nobody", "nobody", "bob"):
        assert _check(users, user, "wrong") is None
    assert len(checks) == 6


def test_the_file_is_re_read_once_the_stat_interval_has_passed(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(f"node:{_hash(b'node-secret', 4)}\n")
    clock = FakeClock()
    users = Htpasswd(str(path), clock=clock)
    assert _check(users, "node", "node-secret") == "node"
    path.write_text(f"node:{_hash(b'rotated', 4)}\n")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert _check(users, "node", "rotated") is None  # within the interval: the file is not stat'ed again
    clock.advance(htpasswd.STAT_INTERVAL_SECONDS)
    assert _check(users, "node", "node-secret") is None
    assert _check(users, "node", "rotated") == "node"
