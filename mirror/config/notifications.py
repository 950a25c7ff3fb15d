"""The ``[[notifications.endpoints]]`` tables: where this edge sends registry:2 event envelopes for pushes and
deletes made through it. The keys are registry:2's ``notifications.endpoints`` keys, so a block can be copied
from the central registry's config (YAML) into the edge's (TOML)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from mirror.config.settings import NotificationEndpoint
from mirror.config.values import ConfigError, parse_bool, parse_duration, parse_int, parse_list

ENDPOINT_KEYS = ("name", "url", "headers", "timeout", "threshold", "backoff", "ignoredmediatypes", "ignore", "disabled", "queue_size")
IGNORE_KEYS = ("mediatypes", "actions")


def _validate_endpoints(notifications: Any) -> tuple[NotificationEndpoint, ...]:
    if not isinstance(notifications, dict):
        raise ConfigError("notifications", "must be a table: [[notifications.endpoints]]")
    for key in notifications:
        if key not in ("endpoints", "events"):
            raise ConfigError(f"notifications.{key}", "unknown setting (known: endpoints, events)")
    tables = notifications.get("endpoints", [])
    if not isinstance(tables, list) or not all(isinstance(item, dict) for item in tables):
        raise ConfigError("notifications.endpoints", "must be an array of tables: [[notifications.endpoints]]")
    return tuple(_endpoint(index, table) for index, table in enumerate(tables))


def _endpoint(index: int, table: dict[str, Any]) -> NotificationEndpoint:
    where = f"notifications.endpoints[{index}]"
    for key in table:
        if key not in ENDPOINT_KEYS:
            raise ConfigError(f"{where}.{key}", f"unknown setting (known: {', '.join(ENDPOINT_KEYS)})")
    url = str(table.get("url", "")).strip()
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise ConfigError(f"{where}.url", f"expected an http(s) URL, got {url!r}")
    name = str(table.get("name", "")).strip()
    if not name:
        raise ConfigError(f"{where}.name", "is required")
    ignore = table.get("ignore", {})
    if not isinstance(ignore, dict) or any(key not in IGNORE_KEYS for key in ignore):
        raise ConfigError(f"{where}.ignore", "expected a table with mediatypes and/or actions")
    return NotificationEndpoint(
        name=name,
        url=url,
        headers=_headers(f"{where}.headers", table.get("headers", {})),
        timeout=parse_duration(f"{where}.timeout", table.get("timeout", "1s")),
        threshold=parse_int(f"{where}.threshold", table.get("threshold", 10), 1, 1_000_000),
        backoff=parse_duration(f"{where}.backoff", table.get("backoff", "1s")),
        ignoredmediatypes=parse_list(f"{where}.ignoredmediatypes", table.get("ignoredmediatypes", [])),
        ignore_mediatypes=parse_list(f"{where}.ignore.mediatypes", ignore.get("mediatypes", [])),
        ignore_actions=parse_list(f"{where}.ignore.actions", ignore.get("actions", [])),
        disabled=parse_bool(f"{where}.disabled", table.get("disabled", False)),
        queue_size=parse_int(f"{where}.queue_size", table.get("queue_size", 1000), 1, 1_000_000),
    )


def _headers(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """registry:2's ``headers``: a table of header name → list of values (a single string is accepted too)."""
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a table such as {Authorization = [\"Bearer <token>\"]}")
    headers = []
    for name, values in value.items():
        for item in [values] if isinstance(values, str) else parse_list(f"{key}.{name}", values):
            headers.append((str(name), str(item)))
    return tuple(headers)
