"""A comparator's failure never costs the edge its figures.

The comparators (registry:2 direct and proxy, the bare ceiling) are context for the edge's figures. When one of
them fails — a registry:2 proxy whose call to its remote timed out on a busy machine answers
``404 MANIFEST_UNKNOWN`` for a tag that exists, a refused or dropped connection — the scenario does what a user
would do: pull again, a few times, a little later. If it still fails, its figure is left blank (None in
results.json, "—" in results.md) and the reason is recorded beside it, as the sweep does per point; the edge's
own figures and every ratio that does not need the failed comparator stay. A timeout is not retried (a user
would, but a pull bounded at minutes would cost the run too much): it is recorded at once.

The edge itself is never retried here: a failed edge pull is the scenario's failure, not noise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from load.client import PullFailed
from load.procs import Process

T = TypeVar("T")

ATTEMPTS = 3
PAUSE_SECONDS = 2.0
RETRIED = (PullFailed, aiohttp.ClientError, ConnectionError)  # what a user would pull again after


def reason(error: BaseException, process: Process | None = None) -> str:
    """The error, and if a process serves the comparator, whether it still runs and its log's last lines."""
    text = f"{type(error).__name__}: {error}"
    if process is not None:
        state = "running" if process.alive() else f"exited with {process.popen.returncode}"
        text += f" ({state}; log: {process.log_tail(10)})"
    return text


async def retried(attempt: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS, pause: float = PAUSE_SECONDS) -> tuple[T, int]:
    """`attempt()`'s value and how many tries it took; errors in `RETRIED` are tried again (at most `attempts`
    times, `pause` seconds apart), anything else and the last failure are raised."""
    for number in range(1, attempts + 1):
        try:
            return await attempt(), number
        except RETRIED:
            if number == attempts:
                raise
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")


class Comparators:
    """Runs comparators' measurements, keeping each one's failures (name → reasons) instead of raising."""

    def __init__(self, processes: dict[str, Process] | None = None, attempts: int = ATTEMPTS,
                 pause: float = PAUSE_SECONDS, log: Callable[[str], None] | None = None) -> None:
        self.processes = processes or {}
        self.errors: dict[str, list[str]] = {}
        self.retries: dict[str, int] = {}
        self._attempts = attempts
        self._pause = pause
        self._log = log

    async def run(self, name: str, attempt: Callable[[], Awaitable[T]]) -> T | None:
        """`attempt()`'s value, retried as a user would; None (and the reason in `errors[name]`) if it failed."""
        try:
            value, tries = await retried(attempt, self._attempts, self._pause)
        except Exception as error:  # noqa: BLE001 - a comparator's failure is recorded, not fatal
            self.errors.setdefault(name, []).append(reason(error, self.processes.get(name)))
            if self._log:
                self._log(f"{name} failed, its figure left blank: {self.errors[name][-1]}")
            return None
        if tries > 1:
            self.retries[name] = self.retries.get(name, 0) + tries - 1
        return value

    def call(self, name: str, measure: Callable[[], T]) -> T | None:
        """A synchronous measurement (its own event loops inside): its value, or None with the reason recorded."""
        async def attempt() -> T:
            return await asyncio.to_thread(measure)
        return asyncio.run(self.run(name, attempt))

    def summary(self) -> dict[str, Any]:
        """What goes into results.json beside the figures: each failed comparator's reasons, and retries made."""
        return {"comparator_errors": self.errors, "comparator_retries": self.retries}
