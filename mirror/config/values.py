"""Parsing one setting's value: sizes, durations, addresses, numbers, booleans, lists; and `ConfigError`."""

from __future__ import annotations

import re
from typing import Any

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload


class ConfigError(ValueError):
    """A setting is missing or wrong; the message starts with the key's dotted name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": KIB, "kb": 1000, "kib": KIB,
    "m": MIB, "mb": 1000**2, "mib": MIB,
    "g": GIB, "gb": 1000**3, "gib": GIB,
    "t": 1024 * GIB, "tb": 1000**4, "tib": 1024 * GIB,
}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_size(key: str, value: Any) -> int:
    """Parse ``10GiB``, ``64MiB``, ``500MB`` or a plain byte count."""
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a size such as 64MiB, got {value!r}")
    number: float  # an int stays an int (exact for large byte counts); a parsed "1.5GiB" is a float
    if isinstance(value, int):
        number, unit = value, ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _SIZE_UNITS:
            raise ConfigError(key, f"cannot parse {value!r} as a size (examples: 10GiB, 64MiB, 500MB, 1048576)")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _SIZE_UNITS[unit])
    if size <= 0:
        raise ConfigError(key, f"must be greater than zero, got {value!r}")
    return size


def parse_duration(key: str, value: Any) -> float:
    """Parse ``30s``, ``5m``, ``1h``, ``250ms`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration such as 30s, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", str(value))
        if not match:
            raise ConfigError(key, f"cannot parse {value!r} as a duration (examples: 30s, 5m, 1h, 250ms)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 0:
        raise ConfigError(key, f"must not be negative, got {value!r}")
    return seconds


def parse_addr(key: str, value: Any) -> tuple[str, int]:
    """Parse ``host:port`` or ``[v6]:port``."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]*):(\d+)", str(value))
    if not match:
        raise ConfigError(key, f"expected host:port such as 0.0.0.0:5000, got {value!r}")
    host = match.group(1) or match.group(3) or "0.0.0.0"
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        raise ConfigError(key, f"port {port} is out of range 0-65535")
    return host, port


def parse_int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a whole number, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # TOML written from YAML (Helm's toToml) turns 8 into 8.0
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(key, f"expected a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {number}")
    return number


def parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(key, f"expected true or false, got {value!r}")


def parse_list(key: str, value: Any) -> tuple[str, ...]:
    """A TOML array of strings, or a comma-separated string (the ``MIRROR_*`` form: ``pull,push``)."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value]
    else:
        raise ConfigError(key, f"expected a list of strings such as [\"pull\"], got {value!r}")
    return tuple(item for item in items if item)


def canonical_addr(host: str, port: int) -> str:
    """The one spelling of an address that peers hash: ``host:port``, ``[v6]:port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
