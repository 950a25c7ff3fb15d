"""How a fill cuts a blob into ranged GETs, and the node-wide budget of backend connections those GETs share.

Planning. A blob uses the whole parallelism as soon as it is larger than a few parts: after a small first part
(its GET also tells the size), the rest is cut into about ``parallelism`` parts of equal length, each between
``min_part_size`` (so one GET's time to first byte stays small against its transfer) and ``part_size``.
Parts never straddle a multiple of ``part_size`` (Storj stores objects in 64 MiB segments: a GET that crosses a
segment boundary pays for two segments). The plan is only the start: a fill splits parts while it runs, to serve
a Range request at its first byte and to give idle connections the tail of a slow part (see `fill.py`).

Budget. All fills of a node share ``max_connections`` ranged GETs. A freed connection goes first to a fill with
a client waiting on a part nobody fetches yet, then to the fill holding the fewest connections (fair share),
then first come first served.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable

ALIGN = 64 * 1024  # part boundaries inside a segment fall on 64 KiB


@dataclass(slots=True)
class Part:
    """Bytes ``[start, end)`` of the blob. `fetched` bytes have been received, `written` are in the file."""

    start: int
    end: int
    fetched: int = 0
    written: int = 0
    started: bool = False

    @property
    def complete(self) -> bool:
        return self.start + self.written >= self.end


def plan_parts(size: int, first_part_size: int, part_size: int, parallelism: int, min_part_size: int) -> list[Part]:
    """The initial parts of a blob of `size` bytes (see the module docstring)."""
    if size <= 0:
        return []
    first_end = min(size, first_part_size)
    parts = [Part(0, first_end)]
    rest = size - first_end
    if rest <= 0:
        return parts
    target = min(part_size, max(min_part_size, -(-rest // max(1, parallelism))))
    segment_start = first_end
    while segment_start < size:
        segment_end = min(size, (segment_start // part_size + 1) * part_size)
        span = segment_end - segment_start
        count = max(1, round(span / target))
        step = -(-span // count)
        step = -(-step // ALIGN) * ALIGN if step > ALIGN else step
        position = segment_start
        while position < segment_end:
            parts.append(Part(position, min(segment_end, position + step)))
            position = parts[-1].end
        segment_start = segment_end
    return parts


@dataclass(slots=True)
class _Waiter:
    owner: Hashable
    urgent: Callable[[], bool]
    sequence: int
    granted: "asyncio.Future[None]"


class ConnectionBudget:
    """At most `limit` backend GETs in flight on this node, shared by every fill."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._held: Counter[Hashable] = Counter()
        self._waiters: list[_Waiter] = []
        self._sequence = itertools.count()

    def held(self, owner: Hashable) -> int:
        return self._held[owner]

    async def acquire(self, owner: Hashable, urgent: Callable[[], bool]) -> None:
        """Wait for a connection for `owner`; `urgent()` is asked at grant time (a client is waiting)."""
        if self.in_use < self.limit and not self._waiters:
            self._take(owner)
            return
        waiter = _Waiter(owner, urgent, next(self._sequence), asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter.granted
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self.release(owner)  # granted just as we were cancelled: give it back
            raise

    def release(self, owner: Hashable) -> None:
        self._held[owner] -= 1
        if self._held[owner] <= 0:
            del self._held[owner]
        self.in_use -= 1
        self._grant()

    def _take(self, owner: Hashable) -> None:
        self.in_use += 1
        self._held[owner] += 1

    def _grant(self) -> None:
        while self.in_use < self.limit and self._waiters:
            best = min(self._waiters, key=lambda w: (not w.urgent(), self._held[w.owner], w.sequence))
            self._waiters.remove(best)
            self._take(best.owner)
            best.granted.set_result(None)
