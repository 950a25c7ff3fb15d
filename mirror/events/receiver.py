"""The receiving end: events from ``POST /admin/notifications`` are deduplicated by id, sorted into deletes
(forget) and manifest pushes (warm), and acted on in the background, each kind in its own bounded queue so a
long warm never holds a delete back. A full queue refuses the envelope (the API answers 503 with Retry-After):
registry:2 keeps the events and sends them again with backoff, so nothing is dropped.

Deletes are forgotten here and on every other edge of the region (a signed ``forget`` message); pushes are
warmed here and on every other edge (a ``warm`` message), each edge filling only the blobs it owns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import cachetools

from mirror import metrics
from mirror.events.envelope import Event
from mirror.mediatypes import DOCKER_MANIFEST_LIST, MANIFEST_TYPES, OCI_INDEX
from mirror.peers.messages import Message

log = logging.getLogger(__name__)

# Event ids remembered for deduplication (an id is ≤ 256 characters: a few MiB at most).
SEEN_IDS = 16384
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

# (what to do, whether to tell the region's other edges too: not for a message that came from one of them)
Handler = Callable[[Message, bool], Awaitable[None]]


def message_for(event: Event, platforms_configured: bool) -> Message | None:
    """What an event asks of the region, or None when it asks nothing (pulls, blob pushes, mounts)."""
    if event.action == "delete":
        return Message("forget", event.repository, str(event.digest) if event.digest else None, event.tag)
    if event.action != "push" or event.media_type not in MANIFEST_TYPES or event.digest is None:
        return None
    if event.tag is None and not (platforms_configured and event.media_type in INDEX_TYPES):
        return None  # a manifest pushed by digest is warmed through the tagged index that lists it
    return Message("warm", event.repository, str(event.digest), event.tag)


class Receiver:
    def __init__(self, handle: Handler, queue_size: int, platforms_configured: bool) -> None:
        self._handle = handle
        self._platforms_configured = platforms_configured
        self._queues = {kind: asyncio.Queue[tuple[Message, bool]](queue_size) for kind in ("forget", "warm")}
        self._seen: cachetools.LRUCache[str, bool] = cachetools.LRUCache(SEEN_IDS)
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(queue), name=f"events {kind}") for kind, queue in self._queues.items()]

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def offer(self, events: list[Event]) -> str:
        """Queue what the envelope asks: "queued"; "busy" (nothing queued, nothing remembered) when a queue has
        no room for it now; "too_many" when it never will (more events than events.queue_size)."""
        fresh: dict[str, Event] = {}
        for event in events:
            if event.id in self._seen or event.id in fresh:
                metrics.events_received.labels(event.action, "duplicate").inc()
            else:
                fresh[event.id] = event
        wanted = [(event, message_for(event, self._platforms_configured)) for event in fresh.values()]
        needed = {kind: sum(1 for _, message in wanted if message is not None and message.kind == kind) for kind in self._queues}
        if any(count > self._queues[kind].maxsize for kind, count in needed.items()):
            return "too_many"
        if any(self._queues[kind].maxsize - self._queues[kind].qsize() < count for kind, count in needed.items()):
            for event in fresh.values():
                metrics.events_received.labels(event.action, "busy").inc()
            return "busy"
        for event, message in wanted:
            self._seen[event.id] = True
            if message is None:
                metrics.events_received.labels(event.action, "ignored").inc()
                continue
            self._queues[message.kind].put_nowait((message, True))
            metrics.events_received.labels(event.action, "queued").inc()
        self._count()
        return "queued"

    def offer_message(self, message: Message) -> bool:
        """A message from another edge of the region: queued unless its queue is full (then dropped: warming is
        best effort, and a forget is applied by the caller at once)."""
        queue = self._queues[message.kind]
        if queue.full():
            return False
        queue.put_nowait((message, False))
        self._count()
        return True

    def _count(self) -> None:
        metrics.events_queued.set(sum(queue.qsize() for queue in self._queues.values()))

    async def _work(self, queue: "asyncio.Queue[tuple[Message, bool]]") -> None:
        while True:
            message, broadcast = await queue.get()
            try:
                await self._handle(message, broadcast)
            except Exception:  # one bad event must not stop the worker
                log.exception("events: acting on %s failed", message)
            finally:
                self._count()
