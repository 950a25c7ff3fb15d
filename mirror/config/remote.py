"""The ``[[upstream]]`` tables: one remote registry each, their defaults and their validation."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlparse

from mirror.config.settings import RemoteConfig
from mirror.config.values import ConfigError, parse_bool, parse_duration, parse_list
from mirror.reference import NAME_RE

# One ``[[upstream]]`` table per remote registry behind the bucket; these are its keys and their defaults.
UPSTREAM_DEFAULTS: dict[str, Any] = {
    "ns": "", "default": False, "url": "", "username": "", "password": "", "prefix": "", "tag_ttl": "10m",
    "allowed_networks": [],
}
# containerd sends ?ns=docker.io, but people write Docker Hub's other names too.
NS_ALIASES = {"docker.io": ("index.docker.io", "registry-1.docker.io")}


def _remote_tables(value: Any) -> list[dict[str, Any]]:
    """The ``[[upstream]]`` tables with defaults filled in; unknown keys raise ConfigError."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError("upstream", "must be an array of tables: [[upstream]]")
    tables = []
    for index, table in enumerate(value):
        for key in table:
            if key not in UPSTREAM_DEFAULTS:
                raise ConfigError(f"upstream[{index}].{key}", f"unknown setting (known: {', '.join(UPSTREAM_DEFAULTS)})")
        tables.append({**UPSTREAM_DEFAULTS, **table})
    return tables


def _validate_remotes(tables: list[dict[str, Any]]) -> tuple[RemoteConfig, ...]:
    remotes: list[RemoteConfig] = []
    seen_ns: set[str] = set()
    for index, table in enumerate(tables):
        key = f"upstream[{index}]"
        ns = str(table["ns"]).strip().lower()
        if not re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?", ns):
            raise ConfigError(f"{key}.ns", f"expected a registry host such as docker.io, got {table['ns']!r}")
        aliases = NS_ALIASES.get(ns, ())
        for name in (ns, *aliases):
            if name in seen_ns:
                raise ConfigError(f"{key}.ns", f"{name!r} is served by another [[upstream]] already")
            seen_ns.add(name)
        url = str(table["url"]).strip().rstrip("/")
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc or urlparse(url).path:
            raise ConfigError(f"{key}.url", f"expected the registry's base URL such as https://registry-1.docker.io, got {url!r}")
        prefix = str(table["prefix"]).strip().strip("/")
        if not NAME_RE.fullmatch(prefix):
            raise ConfigError(f"{key}.prefix", f"expected a repository path such as dockerhub, got {table['prefix']!r}")
        for other in remotes:
            if prefix == other.prefix or prefix.startswith(other.prefix + "/") or other.prefix.startswith(prefix + "/"):
                raise ConfigError(f"{key}.prefix", f"{prefix!r} overlaps the prefix {other.prefix!r} of ns {other.ns!r}")
        username, password = str(table["username"]), str(table["password"])
        if bool(username) != bool(password):
            raise ConfigError(f"{key}.password", "username and password go together: set both or neither")
        default = parse_bool(f"{key}.default", table["default"])
        if default and any(other.default for other in remotes):
            raise ConfigError(f"{key}.default", "only one [[upstream]] may be the default")
        remotes.append(
            RemoteConfig(
                ns=ns, aliases=aliases, default=default, url=url, username=username, password=password,
                prefix=prefix, tag_ttl=parse_duration(f"{key}.tag_ttl", table["tag_ttl"]),
                allowed_networks=_networks(f"{key}.allowed_networks", table["allowed_networks"]),
            )
        )
    return tuple(remotes)


def _networks(key: str, value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDRs such as ``["10.20.0.0/16", "fd00:1::/64"]`` (host bits must be zero: ``10.20.0.5/16`` is a typo)."""
    networks = []
    for item in parse_list(key, value):
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as error:
            raise ConfigError(key, f"expected networks such as [\"10.20.0.0/16\"], got {item!r}: {error}") from None
    return tuple(networks)
