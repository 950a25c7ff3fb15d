"""Coalesce concurrent identical lookups into one backend call."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """``await flight.do(key, make)`` runs ``make()`` once for all concurrent callers with the same key."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, asyncio.Future[T]] = {}

    async def do(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            result = await make()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: callers that joined re-raise it themselves
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._pending[key]
