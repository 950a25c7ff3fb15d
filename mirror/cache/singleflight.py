"""Coalesce concurrent identical lookups into one backend call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Flight(Generic[T]):
    task: "asyncio.Task[T]"
    waiters: int = 0


class SingleFlight(Generic[T]):
    """``await flight.do(key, make)`` runs ``make()`` once for all concurrent callers with the same key.

    The shared work runs in a task of its own, not in the first caller's: a caller that is cancelled (its
    client hung up) only stops waiting, and every other caller still gets the result. When the last caller
    has gone the work is cancelled, so work nobody waits for holds no memory or backend connection.
    """

    def __init__(self) -> None:
        self._pending: dict[Hashable, _Flight[T]] = {}

    async def do(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        flight = self._pending.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(make()))
            self._pending[key] = flight
            flight.task.add_done_callback(lambda done: self._finished(key, done))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()
                if self._pending.get(key) is flight:
                    del self._pending[key]  # a caller arriving now starts afresh instead of joining a cancelled task

    def _finished(self, key: Hashable, task: "asyncio.Task[T]") -> None:
        flight = self._pending.get(key)
        if flight is not None and flight.task is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: every caller re-raises it from its own await
