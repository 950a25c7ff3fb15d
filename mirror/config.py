"""Typed settings: defaults, then a TOML file, then ``MIRROR_*`` environment overrides.

Every key ``[section.sub] key`` can be overridden by ``MIRROR_SECTION_SUB_KEY`` (registry:2's ``REGISTRY_``
convention). The S3 keys carry registry:2's S3 driver names so an operator can copy their registry's settings.
Any bad value raises `ConfigError`, whose text names the key; the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from mirror.reference import NAME_RE

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

DEFAULTS: dict[str, dict[str, Any]] = {
    "http": {
        "addr": "0.0.0.0:5000",
        "metrics_addr": "",
        "certfile": "",
        "keyfile": "",
        "keep_alive_timeout": "75s",
        "read_timeout": "60s",
        "send_timeout": "60s",
        "max_connections": 1024,
        "backlog": 1024,
    },
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
    "cache": {
        "dir": "./cache",
        "size": "10GiB",
        "tag_ttl": "30s",
        "link_ttl": "1h",
        "manifest_memory": "64MiB",
        "link_memory": "16MiB",
    },
    "fill": {
        "part_size": "64MiB",
        "first_part_size": "4MiB",
        "min_part_size": "2MiB",
        "parallelism": 24,
        "max_connections": 32,
    },
    "upload": {"part_size": "64MiB", "max_size": ""},  # max_size unset: 64GiB, or less if 10,000 parts hold less
    "admin": {"enabled": False, "token": ""},
    "log": {"format": "text", "access": True},
    # anonymous: None means "the method's default" (["pull"] for none, [] otherwise).
    "auth": {"method": "none", "anonymous": None, "anonymous_repositories": ["**"]},
    "auth.htpasswd": {"realm": "edge-mirror", "path": ""},
    "auth.token": {"realm": "", "service": "", "issuer": "", "rootcertbundle": "", "jwks": ""},
    "peers": {"addresses": [], "dns": "", "port": 5000, "refresh": "30s", "secret": "", "self": "", "timeout": "3s"},
}

# One ``[[upstream]]`` table per remote registry behind the bucket; these are its keys and their defaults.
UPSTREAM_DEFAULTS: dict[str, Any] = {
    "ns": "", "default": False, "url": "", "username": "", "password": "", "prefix": "", "tag_ttl": "10m",
}
# containerd sends ?ns=docker.io, but people write Docker Hub's other names too.
NS_ALIASES = {"docker.io": ("index.docker.io", "registry-1.docker.io")}

DRIVERS = ("filesystem", "s3")
AUTH_METHODS = ("none", "htpasswd", "token")
ANONYMOUS_ACTIONS = ("pull", "push", "delete")
LOG_FORMATS = ("text", "json")
MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload

log = logging.getLogger(__name__)


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
    keep_alive_timeout: float = 75.0  # an idle connection, or one still sending its request head, is closed after it
    read_timeout: float = 60.0  # longest pause while a client sends a request body (then 408 and close)
    send_timeout: float = 60.0  # longest time sent bytes may stay unacknowledged (a client that stopped reading)
    max_connections: int = 1024  # connections open at once; more are closed as soon as they are accepted
    backlog: int = 1024  # connections the kernel queues before they are accepted


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
    link_ttl: float
    manifest_memory: int
    link_memory: int


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
class RemoteConfig:
    """A remote registry (Docker Hub, ...) served under ``?ns=<ns>`` with its content kept under `prefix`."""

    ns: str
    aliases: tuple[str, ...]
    default: bool
    url: str
    username: str
    password: str = field(repr=False)
    prefix: str
    tag_ttl: float


@dataclass(frozen=True)
class AdminConfig:
    """The operator endpoint (``/admin/...``): off unless enabled, and then only with the bearer `token`."""

    enabled: bool
    token: str = field(repr=False)


@dataclass(frozen=True)
class LogConfig:
    format: str  # "text" for people, "json" (one object a line) for log pipelines
    access: bool  # one access log line per request


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
class PeersConfig:
    """The edges of this region that share their caches (off when neither `addresses` nor `dns` is set).

    Addresses are canonical ``host:port`` strings (``[v6]:port``): every edge hashes the same strings."""

    addresses: tuple[str, ...] = ()
    dns: str = ""
    port: int = 5000
    refresh: float = 30.0
    secret: str = ""
    self_address: str = ""
    timeout: float = 3.0

    @property
    def enabled(self) -> bool:
        return bool(self.addresses or self.dns)


@dataclass(frozen=True)
class Config:
    http: HttpConfig
    storage: StorageConfig
    cache: CacheConfig
    fill: FillConfig
    upload: UploadConfig
    auth: AuthConfig = AuthConfig()
    log: LogConfig = LogConfig(format="text", access=True)
    upstreams: tuple[RemoteConfig, ...] = ()
    admin: AdminConfig = AdminConfig(enabled=False, token="")
    peers: PeersConfig = PeersConfig()


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


def _positive_duration(key: str, value: Any) -> float:
    seconds = parse_duration(key, value)
    if seconds <= 0:
        raise ConfigError(key, f"must be greater than zero, got {value!r}")
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


def canonical_addr(host: str, port: int) -> str:
    """The one spelling of an address that peers hash: ``host:port``, ``[v6]:port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _validate_peers(raw: dict[str, dict[str, Any]], http_host: str, http_port: int) -> PeersConfig:
    values = raw["peers"]
    addresses = []
    for item in parse_list("peers.addresses", values["addresses"]):
        host, port = parse_addr("peers.addresses", item)
        if host in ("0.0.0.0", "::", "") or port == 0:
            raise ConfigError("peers.addresses", f"{item!r} is not an address peers can reach")
        addresses.append(canonical_addr(host, port))
    dns = str(values["dns"]).strip()
    if addresses and dns:
        raise ConfigError("peers.dns", "set peers.addresses or peers.dns, not both")
    secret = str(values["secret"])
    self_text = str(values["self"]).strip()
    if self_text:
        self_address = canonical_addr(*parse_addr("peers.self", self_text))
    elif http_host not in ("0.0.0.0", "::", ""):
        self_address = canonical_addr(http_host, http_port)
    else:
        self_address = ""
    settings = PeersConfig(
        addresses=tuple(dict.fromkeys(addresses)),
        dns=dns,
        port=parse_int("peers.port", values["port"], 1, 65535),
        refresh=parse_duration("peers.refresh", values["refresh"]),
        secret=secret,
        self_address=self_address,
        timeout=parse_duration("peers.timeout", values["timeout"]),
    )
    if not settings.enabled:
        return settings
    if len(secret) < 16:
        raise ConfigError("peers.secret", "needs at least 16 characters when peers are configured (the same on every edge)")
    if not self_address:
        raise ConfigError("peers.self", "is required when http.addr listens on every interface: this edge's address as its peers reach it")
    if addresses and self_address not in settings.addresses:
        raise ConfigError("peers.self", f"{self_address} is not one of peers.addresses")
    if settings.refresh < 1 or settings.timeout <= 0:
        raise ConfigError("peers.refresh" if settings.refresh < 1 else "peers.timeout", "is too short")
    return settings


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
    remotes: list[dict[str, Any]] = []
    if path is not None:
        try:
            document = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("--config", f"file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError("--config", f"{path} is not valid TOML: {error}") from None
        remotes = _remote_tables(document.pop("upstream", []))
        for section, values in _flatten_toml(document).items():
            raw[section].update(values)
    known = set()
    for section, values in raw.items():
        for key in values:
            known.add(env_name(section, key))
            override = environ.get(env_name(section, key))
            if override is not None:
                values[key] = override
    for index, values in enumerate(remotes):
        for key in values:
            known.add(f"MIRROR_UPSTREAM_{index}_{key.upper()}")
            override = environ.get(f"MIRROR_UPSTREAM_{index}_{key.upper()}")
            if override is not None:
                values[key] = override
    for variable in sorted(name for name in environ if name.startswith("MIRROR_") and name not in known):
        # A warning, not a refusal: Kubernetes injects MIRROR_PORT-style variables for a Service named "mirror".
        log.warning("%s is not a setting of this mirror and is ignored (misspelt? see the README's keys)", variable)
    settings = _validate(raw)
    admin = AdminConfig(enabled=parse_bool("admin.enabled", raw["admin"]["enabled"]), token=str(raw["admin"]["token"]))
    if admin.enabled and len(admin.token) < 16:
        raise ConfigError("admin.token", "must be at least 16 characters when admin.enabled is true")
    return replace(settings, upstreams=_validate_remotes(remotes), admin=admin)


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
            )
        )
    return tuple(remotes)


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
    link_memory = parse_size("cache.link_memory", raw["cache"]["link_memory"])
    if link_memory < 64 * KIB:
        raise ConfigError("cache.link_memory", "must be at least 64KiB")
    min_part_size = parse_size("fill.min_part_size", raw["fill"]["min_part_size"])
    if min_part_size < 64 * KIB:
        raise ConfigError("fill.min_part_size", "must be at least 64KiB")
    min_part_size = min(min_part_size, part_size)  # a small part_size (tests, quick benchmarks) lowers the floor
    upload_part_size = parse_size("upload.part_size", raw["upload"]["part_size"])
    if not 5 * MIB <= upload_part_size <= 5 * GIB:
        raise ConfigError("upload.part_size", "must be between 5MiB and 5GiB (S3 multipart part limits)")
    if str(raw["upload"]["max_size"]).strip() == "":
        upload_max_size = min(64 * GIB, MAX_PARTS * upload_part_size)
    else:
        upload_max_size = parse_size("upload.max_size", raw["upload"]["max_size"])
    if upload_max_size > MAX_PARTS * upload_part_size:
        raise ConfigError(
            "upload.max_size",
            f"{raw['upload']['max_size']} needs more than {MAX_PARTS} parts of upload.part_size "
            f"({raw['upload']['part_size']}); raise upload.part_size or lower upload.max_size",
        )
    log_format = str(raw["log"]["format"]).strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError("log.format", f"unknown format {raw['log']['format']!r} (choose one of: {', '.join(LOG_FORMATS)})")
    return Config(
        http=HttpConfig(
            host=host,
            port=port,
            metrics_addr=parse_addr("http.metrics_addr", metrics_addr) if metrics_addr else None,
            certfile=certfile,
            keyfile=keyfile,
            keep_alive_timeout=_positive_duration("http.keep_alive_timeout", raw["http"]["keep_alive_timeout"]),
            read_timeout=_positive_duration("http.read_timeout", raw["http"]["read_timeout"]),
            send_timeout=_positive_duration("http.send_timeout", raw["http"]["send_timeout"]),
            max_connections=parse_int("http.max_connections", raw["http"]["max_connections"], 1, 1_000_000),
            backlog=parse_int("http.backlog", raw["http"]["backlog"], 1, 65535),
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
            link_ttl=parse_duration("cache.link_ttl", raw["cache"]["link_ttl"]),
            manifest_memory=parse_size("cache.manifest_memory", raw["cache"]["manifest_memory"]),
            link_memory=link_memory,
        ),
        fill=FillConfig(
            part_size=part_size,
            first_part_size=first_part_size,
            parallelism=parse_int("fill.parallelism", raw["fill"]["parallelism"], 1, 256),
            min_part_size=min_part_size,
            max_connections=parse_int("fill.max_connections", raw["fill"]["max_connections"], 1, 4096),
        ),
        upload=UploadConfig(part_size=upload_part_size, max_size=upload_max_size),
        auth=_validate_auth(raw),
        log=LogConfig(format=log_format, access=parse_bool("log.access", raw["log"]["access"])),
        peers=_validate_peers(raw, host, port),
    )
