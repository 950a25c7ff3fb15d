"""Turning the flat ``{"section": {key: value}}`` settings into a checked `Config`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mirror.config.settings import (
    AuthConfig,
    CacheConfig,
    Config,
    EventsConfig,
    FilesystemConfig,
    FillConfig,
    HtpasswdConfig,
    HttpConfig,
    LogConfig,
    PeersConfig,
    S3Config,
    StorageConfig,
    TokenConfig,
    UploadConfig,
)
from mirror.config.values import (
    GIB,
    KIB,
    MAX_PARTS,
    MIB,
    ConfigError,
    _positive_duration,
    canonical_addr,
    parse_addr,
    parse_bool,
    parse_duration,
    parse_int,
    parse_list,
    parse_size,
)

DRIVERS = ("filesystem", "s3")
AUTH_METHODS = ("none", "htpasswd", "token")
ANONYMOUS_ACTIONS = ("pull", "push", "delete")
LOG_FORMATS = ("text", "json")


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
            header_timeout=_positive_duration("http.header_timeout", raw["http"]["header_timeout"]),
            max_connections=parse_int("http.max_connections", raw["http"]["max_connections"], 1, 1_000_000),
            max_connections_per_client=parse_int(
                "http.max_connections_per_client", raw["http"]["max_connections_per_client"], 1, 1_000_000
            ),
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
            prefetch=parse_bool("fill.prefetch", raw["fill"]["prefetch"]),
            prefetch_max_bytes=parse_size("fill.prefetch_max_bytes", raw["fill"]["prefetch_max_bytes"]),
            prefetch_inflight_bytes=parse_size("fill.prefetch_inflight_bytes", raw["fill"]["prefetch_inflight_bytes"]),
        ),
        upload=UploadConfig(
            part_size=upload_part_size,
            max_size=upload_max_size,
            parallel_parts=parse_int("upload.parallel_parts", raw["upload"]["parallel_parts"], 1, 64),
        ),
        auth=_validate_auth(raw),
        log=LogConfig(format=log_format, access=parse_bool("log.access", raw["log"]["access"])),
        peers=_validate_peers(raw, host, port),
        events=_validate_events(raw),
    )


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


def _validate_events(raw: dict[str, dict[str, Any]]) -> EventsConfig:
    values = raw["events"]
    platforms = parse_list("events.platforms", values["platforms"])
    for platform in platforms:
        if not 2 <= len(platform.split("/")) <= 3 or not all(platform.split("/")):
            raise ConfigError("events.platforms", f"expected os/architecture[/variant] such as linux/amd64, got {platform!r}")
    return EventsConfig(
        repositories=parse_list("events.repositories", values["repositories"]),
        platforms=platforms,
        max_event_bytes=parse_size("events.max_event_bytes", values["max_event_bytes"]),
        max_inflight_bytes=parse_size("events.max_inflight_bytes", values["max_inflight_bytes"]),
        queue_size=parse_int("events.queue_size", values["queue_size"], 1, 1_000_000),
    )
