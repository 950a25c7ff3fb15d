"""One access log line per request: text for people, or one JSON object a line for log pipelines.

A line holds method, route, repository name, status, body bytes sent, duration, the cache result and the
authenticated subject. The last two are known only to lower layers, which leave them in the ASGI scope's
``"state"`` dict (Starlette's ``request.state``) under these keys:

- ``cache_result``: ``"hit"`` (served from the cache file) or ``"miss"`` (served from a fill), set by the blob
  route once it has a reader;
- ``auth_subject``: who the request was authenticated as, set by the auth layer.

Absent keys are logged as ``null`` (JSON) or ``-`` (text). Client-controlled text (the name) is cut to
`MAX_FIELD` characters and always quoted, so a line stays one line whatever a client sends.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirror.config import LogConfig
from mirror.sendfile import ZEROCOPY_SEND

CACHE_RESULT = "cache_result"
AUTH_SUBJECT = "auth_subject"
MAX_FIELD = 256


def _clip(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_FIELD]


def format_json(entry: dict[str, Any]) -> str:
    return orjson.dumps(entry).decode()


def format_text(entry: dict[str, Any]) -> str:
    """``TIME REMOTE SUBJECT "METHOD ROUTE NAME" STATUS BYTES DURATIONs cache=RESULT``."""

    def field(key: str) -> str:
        value = entry[key]
        return "-" if value is None else orjson.dumps(value).decode() if key in ("name", "subject") else str(value)

    return (
        f'{entry["time"]} {field("remote")} {field("subject")} "{entry["method"]} {entry["route"]} '
        f'{field("name")}" {entry["status"]} {entry["bytes"]} {entry["duration"]:.4f}s cache={field("cache")}'
    )


class AccessLog:
    """ASGI middleware: after each HTTP response ends (or fails), write its access log line to stderr."""

    def __init__(self, app: ASGIApp, config: LogConfig, write: Callable[[str], Any] | None = None) -> None:
        self.app = app
        self.format = format_json if config.format == "json" else format_text
        # Straight to stderr (line-buffered), not through `logging`: a few µs a line instead of tens.
        self.write = write or sys.stderr.write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == ZEROCOPY_SEND:
                sent += message.get("count", 0)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.write(self.format(self._entry(scope, status, sent, time.perf_counter() - started)) + "\n")

    @staticmethod
    def _entry(scope: Scope, status: int, sent: int, seconds: float) -> dict[str, Any]:
        state = scope.get("state") or {}
        client = scope.get("client")
        return {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "remote": client[0] if client else None,
            "method": scope["method"],
            "route": getattr(scope.get("endpoint"), "__name__", "unmatched"),
            "name": _clip(scope.get("path_params", {}).get("name")),
            "status": status,
            "bytes": sent,
            "duration": round(seconds, 6),
            "cache": _clip(state.get(CACHE_RESULT)),
            "subject": _clip(state.get(AUTH_SUBJECT)),
        }
