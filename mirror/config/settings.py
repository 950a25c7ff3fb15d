"""The typed settings: frozen dataclasses, one per ``[section]``, and `Config` holding them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path


@dataclass(frozen=True)
class HttpConfig:
    host: str
    port: int
    metrics_addr: tuple[str, int] | None = None  # when set, /metrics is served there and not on the API address
    certfile: str = ""
    keyfile: str = ""
    keep_alive_timeout: float = 75.0  # an idle keep-alive connection is closed after it
    header_timeout: float = 10.0  # longest time from accept (or a request's first byte) to its complete head
    read_timeout: float = 60.0  # longest pause while a client sends a request body (then 408 and close)
    send_timeout: float = 60.0  # longest time sent bytes may stay unacknowledged (a client that stopped reading)
    max_connections: int = 1024  # connections open at once; more may only ask for a probe path (mirror.admission)
    max_connections_per_client: int = 64  # connections open at once from one client address (at most max_connections // 2)
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
    prefetch: bool = False  # an image manifest served starts background fills of its layers (free room only)
    prefetch_max_bytes: int = 2 * 1024**3  # layer bytes one manifest prefetches at most
    prefetch_inflight_bytes: int = 1024**3  # layer bytes being prefetched at once on this edge


@dataclass(frozen=True)
class UploadConfig:
    part_size: int
    max_size: int
    parallel_parts: int = 8  # parts of one upload request on their way to the backend at once


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
    # Non-public networks this route's redirects and token realm may lead to (see mirror/upstream/dialing.py).
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()


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
class EventsConfig:
    """What registry:2 notification events do on this edge (received at ``POST /admin/notifications``)."""

    repositories: tuple[str, ...] = ("**",)  # globs of repositories whose pushes are warmed
    platforms: tuple[str, ...] = ()  # ``os/arch[/variant]`` of an index warmed; empty: every platform
    max_event_bytes: int = 4 * 1024**3  # blob bytes one pushed image warms at most
    max_inflight_bytes: int = 1024**3  # blob bytes being warmed at once on this edge
    queue_size: int = 1000  # events waiting; beyond it the receiver answers 503 with Retry-After


@dataclass(frozen=True)
class NotificationEndpoint:
    """One ``[[notifications.endpoints]]`` table: where this edge sends events for pushes and deletes through it
    (the keys of registry:2's ``notifications.endpoints``)."""

    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout: float = 1.0
    threshold: int = 10
    backoff: float = 1.0
    ignoredmediatypes: tuple[str, ...] = ()
    ignore_mediatypes: tuple[str, ...] = ()
    ignore_actions: tuple[str, ...] = ()
    disabled: bool = False
    queue_size: int = 1000


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
    events: EventsConfig = EventsConfig()
    notifications: tuple[NotificationEndpoint, ...] = ()
