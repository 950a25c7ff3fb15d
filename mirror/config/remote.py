"""The rules between ``[[upstream]]`` tables (each key's own checks are its kind, in `settings.RemoteConfig`)."""

from __future__ import annotations

from dataclasses import replace

from mirror.config.settings import RemoteConfig
from mirror.config.values import ConfigError

# containerd sends ?ns=docker.io, but people write Docker Hub's other names too.
NS_ALIASES = {"docker.io": ("index.docker.io", "registry-1.docker.io")}


def check_remotes(tables: tuple[RemoteConfig, ...]) -> tuple[RemoteConfig, ...]:
    """Give each route its ns aliases; refuse two routes for one name, overlapping prefixes, two defaults and a
    username without a password (or the reverse)."""
    remotes: list[RemoteConfig] = []
    seen_ns: set[str] = set()
    for index, table in enumerate(tables):
        key = f"upstream[{index}]"
        remote = replace(table, aliases=NS_ALIASES.get(table.ns, ()))
        for name in (remote.ns, *remote.aliases):
            if name in seen_ns:
                raise ConfigError(f"{key}.ns", f"{name!r} is served by another [[upstream]] already")
            seen_ns.add(name)
        for other in remotes:
            prefix = remote.prefix
            if prefix == other.prefix or prefix.startswith(other.prefix + "/") or other.prefix.startswith(prefix + "/"):
                raise ConfigError(f"{key}.prefix", f"{prefix!r} overlaps the prefix {other.prefix!r} of ns {other.ns!r}")
        if bool(remote.username) != bool(remote.password):
            raise ConfigError(f"{key}.password", "username and password go together: set both or neither")
        if remote.default and any(other.default for other in remotes):
            raise ConfigError(f"{key}.default", "only one [[upstream]] may be the default")
        remotes.append(remote)
    return tuple(remotes)
