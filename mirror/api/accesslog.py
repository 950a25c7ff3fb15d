"""One access log line per request: the combined log format for people and log tools, or one JSON object a
line for log pipelines.

Text lines are Apache/nginx's combined format, then the edge's own fields as ``key=value``::

    10.0.0.9 - alice [29/Nov/2026:16:00:00 +0000] "GET /v2/team/app/blobs/sha256:… HTTP/1.1" 200 1048576 "-" "containerd/1.7" duration=0.0123 cache=hit route=blob

The request line is the path exactly as the client sent it (percent-encoding kept) with its query. Everything a
client controls (request line, user, referer, user agent) is escaped as Apache does — ``"`` as ``\\"``, ``\\`` as
``\\\\``, any byte outside printable ASCII as ``\\xHH`` (and a space in the unquoted user too) — and cut to
`MAX_FIELD` bytes, so a hostile client can neither break a line nor forge one.

Two fields are known only to lower layers, which leave them in the ASGI scope's ``"state"`` dict (Starlette's
``request.state``) under these keys:

- ``cache_result``: ``"hit"`` (served from the cache file) or ``"miss"`` (served from a fill), set by the blob
  route once it has a reader;
- ``auth_subject``: who the request was authenticated as, set by the auth layer.

Absent values are logged as ``null`` (JSON) or ``-`` (text).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from starlette.types import Scope

from mirror.api.observed import Outcome
from mirror.config import LogConfig

CACHE_RESULT = "cache_result"
AUTH_SUBJECT = "auth_subject"
MAX_FIELD = 256
MAX_TARGET = 2048  # the path and query of the request line (a repository name and a digest fit many times)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def escape(value: str | bytes | None, limit: int = MAX_FIELD, space: bool = True) -> str:
    """`value` (cut to `limit` bytes) with ``"``, ``\\`` and every byte outside printable ASCII escaped;
    ``-`` for nothing. `space`: whether a space may stay as it is (not in an unquoted field)."""
    if value is None or value == "":
        return "-"
    data = _bytes(value) if isinstance(value, str) else value
    out = []
    for byte in data[:limit]:
        if byte == 0x22:
            out.append('\\"')
        elif byte == 0x5C:
            out.append("\\\\")
        elif 0x21 <= byte < 0x7F or (byte == 0x20 and space):
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _bytes(text: str) -> bytes:
    """HTTP's own bytes back for header and path text (decoded as latin-1 here); UTF-8 for anything else."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def clf_time(moment: datetime) -> str:
    """``07/Dec/2026:01:21:57 +0000`` (the month's name in English whatever the locale)."""
    moment = moment.astimezone(timezone.utc)
    return f"{moment.day:02d}/{MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"


def format_json(entry: dict[str, Any]) -> str:
    return orjson.dumps({**entry, "time": entry["time"].isoformat(timespec="milliseconds")}).decode()


def format_text(entry: dict[str, Any]) -> str:
    """The combined log format, then ``duration=SECONDS cache=RESULT route=ROUTE``."""
    target = entry["path"] + (f"?{entry['query']}" if entry["query"] else "")
    request = f"{escape(entry['method'])} {escape(target, MAX_TARGET)} {escape(entry['protocol'])}"
    return (
        f"{escape(entry['remote'], space=False)} - {escape(entry['subject'], space=False)} [{clf_time(entry['time'])}] "
        f'"{request}" {entry["status"]} {entry["bytes"]} "{escape(entry["referer"])}" "{escape(entry["user_agent"])}" '
        f"duration={entry['duration']:.4f} cache={escape(entry['cache'], space=False)} route={escape(entry['route'], space=False)}"
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")[:MAX_FIELD]
    return None


class AccessLog:
    """An observer of responses (`mirror.api.observed`): after each one ends (or fails), write its access log
    line to stderr."""

    def __init__(self, config: LogConfig, write: Callable[[str], Any] | None = None) -> None:
        self.format = format_json if config.format == "json" else format_text
        # Straight to stderr (line-buffered), not through `logging`: a few µs a line instead of tens.
        self.write = write or sys.stderr.write

    def __call__(self, scope: Scope, outcome: Outcome) -> None:
        self.write(self.format(self._entry(scope, outcome)) + "\n")

    @staticmethod
    def _entry(scope: Scope, outcome: Outcome) -> dict[str, Any]:
        state = scope.get("state") or {}
        client = scope.get("client")
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
        return {
            "time": datetime.now(timezone.utc),
            "remote": client[0] if client else None,
            "method": scope["method"],
            "path": raw_path.decode("latin-1")[:MAX_TARGET],
            "query": scope.get("query_string", b"").decode("latin-1")[:MAX_TARGET],
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            "route": getattr(scope.get("endpoint"), "__name__", "unmatched"),
            "name": _clip(scope.get("path_params", {}).get("name")),
            "status": outcome.status,
            "bytes": outcome.sent,
            "referer": _header(scope, b"referer"),
            "user_agent": _header(scope, b"user-agent"),
            "duration": round(outcome.seconds, 6),
            "cache": _clip(state.get(CACHE_RESULT)),
            "subject": _clip(state.get(AUTH_SUBJECT)),
        }


def _clip(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_FIELD]
