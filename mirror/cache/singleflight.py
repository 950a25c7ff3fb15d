"""Coalesce concurrent identical lookups into one backend call."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """``await flight.do(key, make)`` runs ``make()`` once for all concurrent callers with the same key.

    The shared work runs in a task of its own, not in the first caller's: a caller that is cancelled (its
    client hung up) stops waiting, and every other caller still gets the result. The work is a small bounded
    lookup (a link, a tag, a manifest of at most 4 MiB), so it is simply left to finish when nobody waits.
    """

    def __init__(self) -> None:
        self._pending: dict[Hashable, asyncio.Task[T]] = {}

    async def do(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._pending[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: Hashable, task: "asyncio.Task[T]") -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: every caller re-raises it from its own await
