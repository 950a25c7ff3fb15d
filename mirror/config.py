"""Typed settings: defaults, then a TOML file, then ``MIRROR_*`` environment overrides.

Every key ``[section.sub] key`` can be overridden by ``MIRROR_SECTION_SUB_KEY`` (registry:2's ``REGISTRY_``
convention). The S3 keys carry registry:2's S3 driver names so an operator can copy their registry's settings.
Any bad value raises `ConfigError`, whose text names the key; the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

DEFAULTS: dict[str, dict[str, Any]] = {
    "http": {"addr": "0.0.0.0:5000", "metrics_addr": "", "certfile": "", "keyfile": ""},
    "storage": {"driver": "filesystem", "delete": False},
    "storage.filesystem": {"rootdirectory": "./data"},
    "storage.s3": {
        "region": "us-east-1",
        "regionendpoint": "",
        "bucket": "",
        "accesskey": "",
        "secretkey": "",
        "rootdirectory": "",
    },
    "cache": {"dir": "./cache", "size": "10GiB", "tag_ttl": "30s"},
    "fill": {
        "part_size": "64MiB",
        "first_part_size": "4MiB",
        "min_part_size": "2MiB",
        "parallelism": 24,
        "max_connections": 32,
    },
    "upload": {"part_size": "64MiB", "max_size": "64GiB"},
    # anonymous: None means "the method's default" (["pull"] for none, [] otherwise).
    "auth": {"method": "none", "anonymous": None, "anonymous_repositories": ["**"]},
    "auth.htpasswd": {"realm": "edge-mirror", "path": ""},
    "auth.token": {"realm": "", "service": "", "issuer": "", "rootcertbundle": "", "jwks": ""},
}

DRIVERS = ("filesystem", "s3")
AUTH_METHODS = ("none", "htpasswd", "token")
ANONYMOUS_ACTIONS = ("pull", "push", "delete")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message starts with the key's dotted name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class HttpConfig:
    host: str
    port: int
    metrics_addr: tuple[str, int] | None = None  # when set, /metrics is served there and not on the API address
    certfile: str = ""
    keyfile: str = ""


@dataclass(frozen=True)
class FilesystemConfig:
    rootdirectory: Path


@dataclass(frozen=True)
class S3Config:
    region: str
    regionendpoint: str
    bucket: str
    accesskey: str
    secretkey: str
    rootdirectory: str


@dataclass(frozen=True)
class StorageConfig:
    driver: str
    delete: bool
    filesystem: FilesystemConfig
    s3: S3Config


@dataclass(frozen=True)
class CacheConfig:
    dir: Path
    size: int
    tag_ttl: float


@dataclass(frozen=True)
class FillConfig:
    part_size: int
    first_part_size: int
    parallelism: int
    min_part_size: int = 2 * 1024 * 1024
    max_connections: int = 32


@dataclass(frozen=True)
class UploadConfig:
    part_size: int
    max_size: int


@dataclass(frozen=True)
class HtpasswdConfig:
    realm: str = "edge-mirror"
    path: str = ""


@dataclass(frozen=True)
class TokenConfig:
    realm: str = ""
    service: str = ""
    issuer: str = ""
    rootcertbundle: str = ""
    jwks: str = ""


@dataclass(frozen=True)
class AuthConfig:
    """Who may do what; the names follow registry:2's ``auth:`` block."""

    method: str = "none"
    anonymous: tuple[str, ...] = ("pull",)
    anonymous_repositories: tuple[str, ...] = ("**",)
    htpasswd: HtpasswdConfig = HtpasswdConfig()
    token: TokenConfig = TokenConfig()


@dataclass(frozen=True)
class Config:
    http: HttpConfig
    storage: StorageConfig
    cache: CacheConfig
    fill: FillConfig
    upload: UploadConfig
    auth: AuthConfig = AuthConfig()


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


def _validate_auth(raw: dict[str, dict[str, Any]]) -> AuthConfig:
    method = str(raw["auth"]["method"]).strip().lower()
    if method not in AUTH_METHODS:
        raise ConfigError("auth.method", f"unknown method {raw['auth']['method']!r} (choose one of: {', '.join(AUTH_METHODS)})")
    anonymous_raw = raw["auth"]["anonymous"]
    if anonymous_raw is None:
        anonymous: tuple[str, ...] = ("pull",) if method == "none" else ()
    else:
        anonymous = parse_list("auth.anonymous", anonymous_raw)
    for action in anonymous:
        if action not in ANONYMOUS_ACTIONS:
            raise ConfigError("auth.anonymous", f"unknown action {action!r} (choose from: {', '.join(ANONYMOUS_ACTIONS)})")
    repositories = parse_list("auth.anonymous_repositories", raw["auth"]["anonymous_repositories"])
    htpasswd = HtpasswdConfig(**{key: str(value).strip() for key, value in raw["auth.htpasswd"].items()})
    token = TokenConfig(**{key: str(value).strip() for key, value in raw["auth.token"].items()})
    if method == "htpasswd" and not htpasswd.path:
        raise ConfigError("auth.htpasswd.path", "is required when auth.method is htpasswd")
    if method == "token":
        for key in ("realm", "service", "issuer"):
            if not getattr(token, key):
                raise ConfigError(f"auth.token.{key}", "is required when auth.method is token")
        if not token.rootcertbundle and not token.jwks:
            raise ConfigError("auth.token.rootcertbundle", "token auth needs rootcertbundle or jwks (the keys tokens are signed with)")
    return AuthConfig(method, anonymous, repositories, htpasswd, token)


def env_name(section: str, key: str) -> str:
    """``storage.s3`` + ``bucket`` → ``MIRROR_STORAGE_S3_BUCKET``."""
    return "MIRROR_" + "_".join(section.split(".") + [key]).upper()


def _flatten_toml(document: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Turn nested TOML tables into ``{"storage.s3": {"bucket": ...}}``; unknown keys raise ConfigError."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in document.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            if dotted not in DEFAULTS:
                raise ConfigError(dotted, f"unknown section (known: {', '.join(sorted(DEFAULTS))})")
            sections.update(_flatten_toml(value, dotted))
        else:
            if prefix not in DEFAULTS or key not in DEFAULTS[prefix]:
                raise ConfigError(dotted, "unknown setting")
            sections.setdefault(prefix, {})[key] = value
    return sections


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read defaults, then the TOML file at `path` (if any), then ``MIRROR_*`` overrides, and validate."""
    environ = os.environ if environ is None else environ
    raw = {section: dict(values) for section, values in DEFAULTS.items()}
    if path is not None:
        try:
            document = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("--config", f"file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError("--config", f"{path} is not valid TOML: {error}") from None
        for section, values in _flatten_toml(document).items():
            raw[section].update(values)
    for section, values in raw.items():
        for key in values:
            override = environ.get(env_name(section, key))
            if override is not None:
                values[key] = override
    return _validate(raw)


def _validate(raw: dict[str, dict[str, Any]]) -> Config:
    host, port = parse_addr("http.addr", raw["http"]["addr"])
    metrics_addr = str(raw["http"]["metrics_addr"]).strip()
    certfile, keyfile = str(raw["http"]["certfile"]).strip(), str(raw["http"]["keyfile"]).strip()
    if bool(certfile) != bool(keyfile):
        raise ConfigError("http.keyfile" if certfile else "http.certfile", "TLS needs both http.certfile and http.keyfile")
    driver = str(raw["storage"]["driver"]).strip().lower()
    if driver not in DRIVERS:
        raise ConfigError("storage.driver", f"unknown driver {raw['storage']['driver']!r} (choose one of: {', '.join(DRIVERS)})")
    s3_raw = {key: str(value).strip() for key, value in raw["storage.s3"].items()}
    if driver == "s3":
        if not s3_raw["bucket"]:
            raise ConfigError("storage.s3.bucket", "is required when storage.driver is s3")
        if not s3_raw["region"]:
            raise ConfigError("storage.s3.region", "is required when storage.driver is s3")
        endpoint = s3_raw["regionendpoint"]
        if endpoint and (urlparse(endpoint).scheme not in ("http", "https") or not urlparse(endpoint).netloc):
            raise ConfigError("storage.s3.regionendpoint", f"expected an http(s) URL, got {endpoint!r}")
    part_size = parse_size("fill.part_size", raw["fill"]["part_size"])
    first_part_size = parse_size("fill.first_part_size", raw["fill"]["first_part_size"])
    if part_size < 64 * KIB:
        raise ConfigError("fill.part_size", "must be at least 64KiB")
    if first_part_size > part_size:
        raise ConfigError("fill.first_part_size", "must not be larger than fill.part_size")
    min_part_size = parse_size("fill.min_part_size", raw["fill"]["min_part_size"])
    if min_part_size < 64 * KIB:
        raise ConfigError("fill.min_part_size", "must be at least 64KiB")
    min_part_size = min(min_part_size, part_size)  # a small part_size (tests, quick benchmarks) lowers the floor
    upload_part_size = parse_size("upload.part_size", raw["upload"]["part_size"])
    if not 5 * MIB <= upload_part_size <= 5 * GIB:
        raise ConfigError("upload.part_size", "must be between 5MiB and 5GiB (S3 multipart part limits)")
    return Config(
        http=HttpConfig(
            host=host,
            port=port,
            metrics_addr=parse_addr("http.metrics_addr", metrics_addr) if metrics_addr else None,
            certfile=certfile,
            keyfile=keyfile,
        ),
        storage=StorageConfig(
            driver=driver,
            delete=parse_bool("storage.delete", raw["storage"]["delete"]),
            filesystem=FilesystemConfig(rootdirectory=Path(str(raw["storage.filesystem"]["rootdirectory"]))),
            s3=S3Config(**s3_raw),
        ),
        cache=CacheConfig(
            dir=Path(str(raw["cache"]["dir"])),
            size=parse_size("cache.size", raw["cache"]["size"]),
            tag_ttl=parse_duration("cache.tag_ttl", raw["cache"]["tag_ttl"]),
        ),
        fill=FillConfig(
            part_size=part_size,
            first_part_size=first_part_size,
            parallelism=parse_int("fill.parallelism", raw["fill"]["parallelism"], 1, 256),
            min_part_size=min_part_size,
            max_connections=parse_int("fill.max_connections", raw["fill"]["max_connections"], 1, 4096),
        ),
        upload=UploadConfig(part_size=upload_part_size, max_size=parse_size("upload.max_size", raw["upload"]["max_size"])),
        auth=_validate_auth(raw),
    )
