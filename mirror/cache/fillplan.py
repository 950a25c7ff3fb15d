"""How a fill cuts a blob into ranged GETs, and the node-wide budget of backend connections those GETs share.

Planning. A blob uses the whole parallelism as soon as it is larger than a few parts: after a small first part
(its GET also tells the size), the rest is cut into about ``parallelism`` parts of equal length, each between
``min_part_size`` (so one GET's time to first byte stays small against its transfer) and ``part_size``.
Parts never straddle a multiple of ``part_size`` (Storj stores objects in 64 MiB segments: a GET that crosses a
segment boundary pays for two segments). The plan is only the start: a fill splits parts while it runs, to serve
a Range request at its first byte and to give idle connections the tail of a slow part (see `fill.py`).

A fill plans for the connections it can expect: when other fills already share the budget, it plans its share
of it rather than the whole ``parallelism`` (ten layers of one pull are ten fills: fewer, longer GETs each, so
fewer first-byte waits and less per-request work). Fills that can use little more (a small layer in its last
part) leave it the rest, so a big layer pulled beside small ones still plans the whole parallelism: splitting its
parts later, when the small ones are done, would cut running GETs (at most once per ``STEAL_BYTES``).

Budget. All fills of a node share ``max_connections`` ranged GETs. A freed connection goes first to a fill with
a client waiting on a part nobody fetches yet, then to any fill before a background one (a prefetch no client
has joined yet), then to the fill holding the fewest connections (fair share), then first come first served.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Collection, Hashable, Iterator

ALIGN = 64 * 1024  # part boundaries inside a segment fall on 64 KiB
MIN_SPLIT = 256 * 1024  # never cut a piece smaller than this off a part nobody fetches yet
STEAL_PARTS = 4  # an idle connection takes over half of a running part only if this many min parts remain
# A fill cuts a running GET short for an idle connection (a steal) at most once per this many bytes of its blob.
# Each cut wastes what the bucket already sent on that connection and the edge will not read: up to a TCP window,
# ~4.5 MiB measured through the harness's link whenever the edge, not the link, bounds the fill (the sender's queue
# is full then). Unbounded, steals put a 1 GiB image's bucket reads at 1.1-1.2x its size and the 64-pull herd's
# at 1.11x; one per 256 MiB keeps the waste under ~2 % of a blob while a big blob's idle connections still help.
STEAL_BYTES = 256 * 1024 * 1024


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


def steals_allowed(size: int) -> int:
    """Running GETs a fill of `size` bytes may cut short for idle connections: one per STEAL_BYTES."""
    return size // STEAL_BYTES


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


class PartTable:
    """The parts of one blob, sorted and covering it, and how they are cut while a fill runs.

    `pick` chooses what the next free connection fetches: the part at a position a client waits for (cutting
    a part there, even one being fetched when its GET is far from that position), else the first part not
    started, else the second half of the slowest part's remaining bytes (when at least `STEAL_PARTS` minimum
    parts remain, at most `steals` times). A cut never fetches a byte twice: a part being fetched just stops at
    its new end, but what was in flight beyond it is lost (see STEAL_BYTES).
    """

    def __init__(self, parts: list[Part], min_part_size: int, steals: int = 0) -> None:
        self.parts = parts
        self._min_part_size = min_part_size
        self._steals_left = steals  # see STEAL_BYTES and `steals_allowed`

    def __iter__(self) -> Iterator[Part]:
        return iter(self.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __getitem__(self, index: int) -> Part:
        return self.parts[index]

    @property
    def complete(self) -> bool:
        return all(part.complete for part in self.parts)

    def available_end(self, position: int) -> int:
        """End of the bytes already written contiguously from `position`."""
        end = position
        for part in self.parts[max(0, self._index(position)):]:
            if part.end <= end:
                continue
            if part.start > end:
                break
            written_to = part.start + part.written
            if written_to <= end:
                break
            end = written_to
            if not part.complete:
                break
        return end

    def unstarted(self) -> int:
        """Parts nobody fetches yet."""
        return sum(1 for part in self.parts if not part.started)

    def has_work(self) -> bool:
        return any(not part.started or self._stealable(part) for part in self.parts)

    def has_urgent(self, wants: Collection[int]) -> bool:
        return any(self._urgent_cut(position) is not None for position in wants)

    def pick(self, wants: list[int]) -> Part | None:
        """The next part to fetch (marked started), or None; `wants` are the positions clients wait at."""
        self._cut_at(wants)
        for position in wants:
            cut = self._urgent_cut(position)
            if cut is not None:
                piece = self._split(*cut)
                if piece.fetched == 0 and piece.end - piece.start > 2 * self._min_part_size:
                    # A short GET for the client; the rest waits its turn, so the connection is soon free again.
                    self._split(piece, piece.start + self._min_part_size, start=False)
                return piece
        for part in self.parts:
            if not part.started:
                part.started = True
                return part
        slowest = max(self.parts, key=lambda part: part.end - (part.start + part.fetched))
        if not self._stealable(slowest):
            return None
        self._steals_left -= 1
        remaining_from = slowest.start + slowest.fetched
        middle = remaining_from + (slowest.end - remaining_from) // 2
        return self._split(slowest, middle - middle % ALIGN)

    def _index(self, position: int) -> int:
        return bisect.bisect_right(self.parts, position, key=lambda part: part.start) - 1

    def _stealable(self, part: Part) -> bool:
        # Cutting a running GET short wastes what is already in flight on its connection (see STEAL_BYTES): only
        # worth it for a remainder of several parts, and only as often as the fill's allowance says.
        return (self._steals_left > 0 and part.started
                and part.end - (part.start + part.fetched) >= STEAL_PARTS * self._min_part_size)

    def _urgent_cut(self, position: int) -> tuple[Part, int] | None:
        """The part to cut (or start) so that byte `position` is fetched next, and where to cut it."""
        index = self._index(position)
        if index < 0 or position >= self.parts[index].end:
            return None
        part = self.parts[index]
        if not part.started:
            return part, position if position - part.start >= MIN_SPLIT else part.start
        if position - (part.start + part.fetched) >= max(self._min_part_size, MIN_SPLIT):
            return part, position  # its GET is far from there: cut it short, fetch the rest separately
        return None

    def _cut_at(self, wants: list[int]) -> None:
        """Cut parts nobody fetches yet at every wanted position, so that each starts a part of its own and a GET
        started for one client never has to be cut short for another."""
        for position in wants:
            index = self._index(position)
            part = self.parts[index] if index >= 0 else None
            if part is not None and not part.started and position - part.start >= MIN_SPLIT and position < part.end:
                self._split(part, position, start=False)

    def _split(self, part: Part, at: int, start: bool = True) -> Part:
        """Make ``[at, part.end)`` a part of its own (started unless told otherwise); `part` keeps the rest."""
        if at <= part.start:
            part.started = part.started or start
            return part
        tail = Part(at, part.end, started=start)
        part.end = at
        bisect.insort(self.parts, tail, key=lambda item: item.start)
        return tail


@dataclass(slots=True)
class _Waiter:
    owner: Hashable
    urgent: Callable[[], bool]
    sequence: int
    granted: "asyncio.Future[None]"
    background: Callable[[], bool]


class ConnectionBudget:
    """At most `limit` backend GETs in flight on this node, shared by every fill. The last `reserve` of them are
    only for GETs a client waits on (a Range into a part nobody fetches), so read-ahead can never make a cold
    Range wait for a long GET to end."""

    def __init__(self, limit: int, reserve: int = 0) -> None:
        self.limit = limit
        self.reserve = min(reserve, limit - 1)
        self.in_use = 0
        self._held: Counter[Hashable] = Counter()
        self._waiters: list[_Waiter] = []
        self._sequence = itertools.count()

    def held(self, owner: Hashable) -> int:
        return self._held[owner]

    def fair_share(self, wanted: int, owner: Hashable, unstarted: Callable[[Hashable], int | None]) -> int:
        """How many GETs `owner`, planning now, can expect to run at once: `wanted`, or what the budget leaves it
        beside the other fills holding or waiting for connections, never below 2.

        Each other fill counts for what it can still use (the connections it holds plus `unstarted`, its parts
        nobody fetches yet; an equal share when that is None: not known yet), at most an equal share of the
        budget. A layer planned beside a few small ones that end in a moment plans for the connections it will
        have, not for a share it would have to regain later by cutting its running GETs short (each cut wastes
        what is in flight on it)."""
        others = (self._held.keys() | {waiter.owner for waiter in self._waiters}) - {owner}
        equal = self.limit / (len(others) + 1)
        taken = 0.0
        for other in others:
            waiting = unstarted(other)
            taken += equal if waiting is None else min(equal, self._held[other] + waiting)
        return max(2, min(wanted, int(self.limit - taken)))

    async def acquire(self, owner: Hashable, urgent: Callable[[], bool], background: Callable[[], bool] | None = None) -> None:
        """Wait for a connection for `owner`; `urgent()` is asked at grant time (a client is waiting);
        `background()` too (a prefetch nobody waits for yet: served after every other waiter)."""
        now_urgent = urgent()
        if self._room(now_urgent) and (now_urgent or not self._waiters):  # waiters are never urgent while there is room
            self._take(owner)
            return
        granted = asyncio.get_running_loop().create_future()
        waiter = _Waiter(owner, urgent, next(self._sequence), granted, background or _never)
        self._waiters.append(waiter)
        try:
            await waiter.granted
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self.release(owner)  # granted just as we were cancelled: give it back
            raise

    def try_acquire(self, owner: Hashable) -> bool:
        """Take a connection only if one is free right now and nobody waits (hedges never queue)."""
        if not self._waiters and self._room(False):
            self._take(owner)
            return True
        return False

    def release(self, owner: Hashable) -> None:
        self._held[owner] -= 1
        if self._held[owner] <= 0:
            del self._held[owner]
        self.in_use -= 1
        self._grant()

    def _room(self, urgent: bool) -> bool:
        return self.in_use < (self.limit if urgent else self.limit - self.reserve)

    def _take(self, owner: Hashable) -> None:
        self.in_use += 1
        self._held[owner] += 1

    def _grant(self) -> None:
        while self._waiters:
            best = min(self._waiters, key=lambda w: (not w.urgent(), w.background(), self._held[w.owner], w.sequence))
            if not self._room(best.urgent()):
                return
            self._waiters.remove(best)
            self._take(best.owner)
            best.granted.set_result(None)


def _never() -> bool:
    return False
