"""The ``[notifications]`` table: registry:2's ``notifications`` block, of which the edge reads ``endpoints``
(the keys of each ``[[notifications.endpoints]]`` are declared in `settings.NotificationEndpoint`), so a block can
be copied from the central registry's config (YAML) into the edge's (TOML)."""

from __future__ import annotations

from typing import Any

from mirror.config.values import ConfigError


def endpoint_tables(notifications: Any) -> Any:
    """The ``[[notifications.endpoints]]`` tables of the ``[notifications]`` table, as written."""
    if not isinstance(notifications, dict):
        raise ConfigError("notifications", "must be a table: [[notifications.endpoints]]")
    for key in notifications:
        if key not in ("endpoints", "events"):
            raise ConfigError(f"notifications.{key}", "unknown setting (known: endpoints, events)")
    return notifications.get("endpoints", [])
