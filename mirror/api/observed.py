"""The one place that watches each HTTP response go out: its status, the body bytes sent (zero-copy ones
included) and how long it took, handed to every observer once the response has ended or failed — the request
metrics and the access log both read it here, so they cannot disagree about what was answered."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirror.sendfile import ZEROCOPY_SEND


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request was answered: `status` (500 if the app failed before a response began), `sent` body bytes,
    `seconds` from the request reaching the app to the end of its answer."""

    status: int
    sent: int
    seconds: float


Observer = Callable[[Scope, Outcome], None]


class ObservedResponses:
    """ASGI middleware: adds `headers` to every response and tells each of `observers` how it went."""

    def __init__(self, app: ASGIApp, observers: Sequence[Observer], headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.app = app
        self.observers = tuple(observers)
        self.headers = list(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *self.headers]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == ZEROCOPY_SEND:
                sent += message.get("count", 0)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            outcome = Outcome(status, sent, time.perf_counter() - started)
            for observe in self.observers:
                observe(scope, outcome)
