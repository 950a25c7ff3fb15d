"""Who the region's edges are: a static list, or the A/AAAA records of a name (a Kubernetes headless Service
lists the ready pods) re-resolved every `refresh`, minus edges that just failed a request of ours.

This edge is always a member: it is live by definition, and when another edge does not list it yet (a pod not
ready), the worst case is that both read the same blob from the bucket once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Awaitable, Callable

from mirror import metrics
from mirror.config import PeersConfig, canonical_addr

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(name: str, port: int) -> list[str]:
    """Every address `name` resolves to, as canonical ``host:port`` strings, through the event loop's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
    return sorted({canonical_addr(str(info[4][0]), port) for info in infos})


class Membership:
    """The live edges of the region, as seen from this one."""

    def __init__(self, settings: PeersConfig, resolver: Resolver = resolve) -> None:
        self.self_address = settings.self_address
        self._settings = settings
        self._resolver = resolver
        self._members: tuple[str, ...] = tuple(sorted({*settings.addresses, settings.self_address}))
        self._down_until: dict[str, float] = {}
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Resolve once (a failure is logged, not fatal), then keep re-resolving in the background."""
        if self._settings.dns:
            await self.refresh()
            self._refresher = asyncio.create_task(self._refresh_forever(), name="peers dns refresh")
        self.live()  # sets the gauge

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)

    async def refresh(self) -> None:
        """Re-resolve the DNS name; on failure keep the last answer (a resolver hiccup must not split the region)."""
        try:
            found = await self._resolver(self._settings.dns, self._settings.port)
        except (OSError, UnicodeError) as error:
            log.warning("peers: cannot resolve %s: %s; keeping %d known peers", self._settings.dns, error, len(self._members))
            return
        members = tuple(sorted({*found, self.self_address}))
        if members != self._members:
            log.info("peers: %s now lists %d edges", self._settings.dns, len(members))
        self._members = members
        self.live()  # updates the gauge

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.refresh)
            await self.refresh()

    def live(self) -> tuple[str, ...]:
        """The members not marked down (this edge always included)."""
        now = time.monotonic()
        live = tuple(peer for peer in self._members if self._down_until.get(peer, 0.0) <= now)
        metrics.peers_live.set(len(live))
        return live

    def mark_down(self, peer: str) -> None:
        """Leave `peer` out of ownership for one refresh period: it just failed us (unreachable, slow, broken)."""
        if peer == self.self_address:
            return
        self._down_until[peer] = time.monotonic() + self._settings.refresh
        for known in [known for known, until in self._down_until.items() if until <= time.monotonic()]:
            del self._down_until[known]
        self.live()  # updates the gauge
