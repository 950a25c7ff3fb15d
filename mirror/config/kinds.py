"""The kinds of value a setting can take: each is a parser ``(dotted key, raw value) -> typed value`` that raises
`ConfigError` naming the key. `settings.py` gives every key one of these."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from mirror.config.values import (
    ConfigError,
    canonical_addr,
    parse_addr,
    parse_bool,
    parse_duration,
    parse_int,
    parse_list,
    parse_size,
)
from mirror.reference import NAME_RE

size, duration, boolean, strings, addr = parse_size, parse_duration, parse_bool, parse_list, parse_addr


def text(key: str, value: Any) -> str:
    return str(value).strip()


def verbatim(key: str, value: Any) -> str:
    """Secrets and credentials: taken as written, spaces included."""
    return str(value)


def path(key: str, value: Any) -> Path:
    return Path(str(value))


def whole(low: int, high: int) -> Callable[[str, Any], int]:
    return lambda key, value: parse_int(key, value, low, high)


def choice(options: tuple[str, ...], what: str) -> Callable[[str, Any], str]:
    def parse(key: str, value: Any) -> str:
        chosen = str(value).strip().lower()
        if chosen not in options:
            raise ConfigError(key, f"unknown {what} {value!r} (choose one of: {', '.join(options)})")
        return chosen

    return parse


def positive_duration(key: str, value: Any) -> float:
    seconds = parse_duration(key, value)
    if seconds <= 0:
        raise ConfigError(key, f"must be greater than zero, got {value!r}")
    return seconds


def bounded_size(low: int, high: int, problem: str) -> Callable[[str, Any], int]:
    def parse(key: str, value: Any) -> int:
        number = parse_size(key, value)
        if not low <= number <= high:
            raise ConfigError(key, problem)
        return number

    return parse


def optional(parse: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """An empty string means unset: None, which `validate.py` replaces by a derived default."""

    def parse_set(key: str, value: Any) -> Any:
        if isinstance(value, str):
            return parse(key, value.strip()) if value.strip() else None
        return parse(key, value)

    return parse_set


def nullable(parse: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """None (only a default can be None: TOML has no null) means unset, derived in `validate.py`."""
    return lambda key, value: None if value is None else parse(key, value)


def members(options: tuple[str, ...], what: str) -> Callable[[str, Any], tuple[str, ...]]:
    def parse(key: str, value: Any) -> tuple[str, ...]:
        items = parse_list(key, value)
        for item in items:
            if item not in options:
                raise ConfigError(key, f"unknown {what} {item!r} (choose from: {', '.join(options)})")
        return items

    return parse


def platforms(key: str, value: Any) -> tuple[str, ...]:
    items = parse_list(key, value)
    for platform in items:
        if not 2 <= len(platform.split("/")) <= 3 or not all(platform.split("/")):
            raise ConfigError(key, f"expected os/architecture[/variant] such as linux/amd64, got {platform!r}")
    return items


def peer_addresses(key: str, value: Any) -> tuple[str, ...]:
    """Canonical ``host:port`` strings (every edge hashes the same spelling), each once."""
    addresses = []
    for item in parse_list(key, value):
        host, port = parse_addr(key, item)
        if host in ("0.0.0.0", "::", "") or port == 0:
            raise ConfigError(key, f"{item!r} is not an address peers can reach")
        addresses.append(canonical_addr(host, port))
    return tuple(dict.fromkeys(addresses))


def peer_address(key: str, value: Any) -> str:
    written = str(value).strip()
    return canonical_addr(*parse_addr(key, written)) if written else ""


def registry_host(key: str, value: Any) -> str:
    host = str(value).strip().lower()
    if not re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?", host):
        raise ConfigError(key, f"expected a registry host such as docker.io, got {value!r}")
    return host


def base_url(key: str, value: Any) -> str:
    url = str(value).strip().rstrip("/")
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc or urlparse(url).path:
        raise ConfigError(key, f"expected the registry's base URL such as https://registry-1.docker.io, got {url!r}")
    return url


def http_url(key: str, value: Any) -> str:
    url = str(value).strip()
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise ConfigError(key, f"expected an http(s) URL, got {url!r}")
    return url


def repository_prefix(key: str, value: Any) -> str:
    prefix = str(value).strip().strip("/")
    if not NAME_RE.fullmatch(prefix):
        raise ConfigError(key, f"expected a repository path such as dockerhub, got {value!r}")
    return prefix


def required_text(key: str, value: Any) -> str:
    written = str(value).strip()
    if not written:
        raise ConfigError(key, "is required")
    return written


def networks(key: str, value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDRs such as ``["10.20.0.0/16", "fd00:1::/64"]`` (host bits must be zero: ``10.20.0.5/16`` is a typo)."""
    found = []
    for item in parse_list(key, value):
        try:
            found.append(ipaddress.ip_network(item, strict=True))
        except ValueError as error:
            raise ConfigError(key, f"expected networks such as [\"10.20.0.0/16\"], got {item!r}: {error}") from None
    return tuple(found)


def headers(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """registry:2's ``headers``: a table of header name → list of values (a single string is accepted too)."""
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a table such as {Authorization = [\"Bearer <token>\"]}")
    found = []
    for name, values in value.items():
        for item in [values] if isinstance(values, str) else parse_list(f"{key}.{name}", values):
            found.append((str(name), str(item)))
    return tuple(found)
