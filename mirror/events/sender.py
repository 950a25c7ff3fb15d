"""The sending end: a push through an edge goes straight to the bucket, so the central registry never sees it.
With ``[[notifications.endpoints]]`` (registry:2's keys) an edge sends the same envelopes registry:2 would for
manifest pushes and for manifest and blob deletes made through it, so other regions warm and forget the same way.

Each endpoint has its own bounded queue and one sender, like registry:2: events go one per envelope, in order; a
failed send (not 2xx) is retried at once up to ``threshold`` failures, then after ``backoff`` (or the receiver's
Retry-After, when longer) until it is taken. A full queue drops the newest event (counted): a push must never wait
for a slow endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from mirror import metrics
from mirror.config import NotificationEndpoint
from mirror.events import envelope
from mirror.reference import Digest

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 60.0


class Sender:
    def __init__(self, endpoints: tuple[NotificationEndpoint, ...], source: str) -> None:
        self._endpoints = [endpoint for endpoint in endpoints if not endpoint.disabled]
        self._source = source
        self._queues = [asyncio.Queue[bytes](endpoint.queue_size) for endpoint in self._endpoints]
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        if not self._endpoints:
            return
        self._session = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(self._send_forever(endpoint, queue), name=f"notifications {endpoint.name}")
            for endpoint, queue in zip(self._endpoints, self._queues)
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # -- what push tells us (mirror.push.notices.PushEvents) ------------------------------------------------

    def pushed(self, name: str, digest: Digest, media_type: str, size: int, tag: str | None) -> None:
        self._emit(envelope.build("push", name, digest, media_type, size, tag, self._source))

    def deleted(self, name: str, digest: Digest) -> None:
        self._emit(envelope.build("delete", name, digest, source=self._source))

    def _emit(self, event: dict[str, Any]) -> None:
        media_type = str(event["target"].get("mediaType", ""))
        body = envelope.envelope([event])
        for endpoint, queue in zip(self._endpoints, self._queues):
            if event["action"] in endpoint.ignore_actions:
                continue
            if media_type and media_type in (*endpoint.ignoredmediatypes, *endpoint.ignore_mediatypes):
                continue
            if queue.full():
                log.warning("notifications: %s is %d events behind; dropping one", endpoint.name, queue.qsize())
                metrics.events_sent.labels("dropped").inc()
                continue
            queue.put_nowait(body)

    # -- the endpoint's sender ----------------------------------------------------------------------------------

    async def _send_forever(self, endpoint: NotificationEndpoint, queue: "asyncio.Queue[bytes]") -> None:
        while True:
            body = await queue.get()
            failures = 0
            while True:
                wait = await self._send(endpoint, body)
                if wait is None:
                    metrics.events_sent.labels("sent").inc()
                    break
                failures += 1
                metrics.events_sent.labels("retried").inc()
                if failures >= endpoint.threshold:
                    await asyncio.sleep(max(endpoint.backoff, wait))

    async def _send(self, endpoint: NotificationEndpoint, body: bytes) -> float | None:
        """POST one envelope; None when taken, else how long the endpoint asked us to wait (0: not said)."""
        assert self._session is not None
        headers = [("Content-Type", envelope.MEDIA_TYPE), *endpoint.headers]
        try:
            async with self._session.post(endpoint.url, data=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=endpoint.timeout)) as response:
                if 200 <= response.status < 300:
                    return None
                log.warning("notifications: %s answered %d", endpoint.name, response.status)
                retry_after = response.headers.get("Retry-After", "")
                return min(float(retry_after), MAX_RETRY_AFTER) if retry_after.isdigit() else 0.0
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            log.warning("notifications: cannot reach %s: %r", endpoint.name, error)
            return 0.0
