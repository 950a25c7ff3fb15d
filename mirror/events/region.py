"""What an event does to the region: the composition of the receiver, the warmer, this edge's cache and the
signed peer channel."""

from __future__ import annotations

import asyncio
import logging

from mirror import metrics
from mirror.cache import EdgeCache
from mirror.config import EventsConfig
from mirror.events.receiver import Receiver
from mirror.events.warm import Warmer
from mirror.peers import PeerReader
from mirror.peers.messages import Message, broadcast
from mirror.reference import Digest, parse_digest, parse_name, parse_tag

log = logging.getLogger(__name__)

# Messages on their way to the region's other edges at once (a down peer is retried for seconds); beyond it the
# worker waits, so the queue in front of it fills and the receiver answers 503.
PENDING_BROADCASTS = 64


class RegionEvents:
    def __init__(self, edge: EdgeCache, reader: object, settings: EventsConfig, peer_timeout: float) -> None:
        self._edge = edge
        self._peers = reader if isinstance(reader, PeerReader) else None
        self._timeout = peer_timeout
        peers = self._peers
        self.warmer = Warmer(edge, settings, lambda digest: peers is None or peers.owner_of(digest) is None)
        self.receiver = Receiver(self.handle, settings.queue_size, bool(settings.platforms))
        self._telling: set[asyncio.Future[int]] = set()

    def start(self) -> None:
        self.receiver.start()

    async def close(self) -> None:
        await self.receiver.close()
        for task in self._telling:
            task.cancel()
        await asyncio.gather(*self._telling, return_exceptions=True)

    async def handle(self, message: Message, tell_region: bool) -> None:
        """Act on `message` here and, when it came from an event (not from a peer), on every other edge (in the
        background: a peer that is down is retried without holding the next event back)."""
        if tell_region and self._peers is not None:
            if len(self._telling) >= PENDING_BROADCASTS:
                await asyncio.wait(self._telling, return_when=asyncio.FIRST_COMPLETED)
            told = asyncio.ensure_future(broadcast(self._peers, [message], self._timeout))
            self._telling.add(told)
            told.add_done_callback(self._telling.discard)
        if message.kind == "forget":
            self.forget(message)
        else:
            await self.warm(message)

    def forget(self, message: Message) -> None:
        repository, digest, tag = _parse(message)
        self._edge.forget(repository, digest, tag)
        metrics.event_forgets.inc()
        log.info("events: forgot %s%s", repository, f":{tag}" if tag else f"@{digest}")

    async def warm(self, message: Message) -> None:
        repository, digest, tag = _parse(message)
        filled = await self.warmer.warm(repository, digest, tag)
        log.info("events: warmed %s%s (%d bytes filled here)", repository, f":{tag}" if tag else f"@{digest}", filled)

    def from_peer(self, message: Message) -> None:
        """A message another edge of the region sent: a forget is applied at once, a warm is queued."""
        metrics.region_messages.labels("received").inc()
        if message.kind == "forget":
            self.forget(message)
        elif not self.receiver.offer_message(message):
            log.warning("events: warm queue full; not warming %s", message.repository)


def _parse(message: Message) -> tuple[str, Digest | None, str | None]:
    """Raises `mirror.domain.Invalid` for a malformed name, digest or tag (the API answers 400)."""
    repository = parse_name(message.repository)
    digest = parse_digest(message.digest) if message.digest else None
    tag = parse_tag(message.tag) if message.tag else None
    return repository, digest, tag
