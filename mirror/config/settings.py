"""Every setting, declared once: one frozen dataclass per ``[section]``, each field a `key()` with its default
(as written in TOML), its kind (the parser that checks it) and its help line, in the README's order. The loader,
the ``MIRROR_*`` names and the README's configuration block (``python -m mirror.config``) all come from here;
rules between keys are in `validate.py`, ``[[upstream]]``'s in `remote.py`."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from mirror.config import kinds as k
from mirror.config.schema import key, section, tables
from mirror.config.values import GIB

DRIVERS = ("filesystem", "s3")
AUTH_METHODS = ("none", "htpasswd", "token")
ANONYMOUS_ACTIONS = ("pull", "push", "delete")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, kw_only=True)
class HttpConfig:
    addr: tuple[str, int] = key("0.0.0.0:5000", k.addr)
    metrics_addr: tuple[str, int] | None = key("", k.optional(k.addr), 'e.g. "127.0.0.1:9090": serve /metrics there only, not on addr')
    certfile: str = key("", k.text, "PEM certificate chain and key: the edge terminates TLS itself")
    keyfile: str = key("", k.text)
    keep_alive_timeout: float = key("75s", k.positive_duration, "an idle keep-alive connection is closed after it")
    header_timeout: float = key("10s", k.positive_duration, "from accept (or a request's first byte) to its complete head: then 408 and close")
    read_timeout: float = key("60s", k.positive_duration, "longest pause while a client sends a request body: then 408 and close")
    send_timeout: float = key("60s", k.positive_duration, "longest time sent bytes may stay unacknowledged (a client that stopped reading)")
    max_connections: int = key(1024, k.whole(1, 1_000_000), "client connections open at once; more may only ask for /healthz, /readyz, /metrics")
    max_connections_per_client: int = key(64, k.whole(1, 1_000_000), "of those, from one client address (at most half of max_connections); see SECURITY.md")
    backlog: int = key(1024, k.whole(1, 65535), "connections the kernel queues before they are accepted")

    @property
    def host(self) -> str:
        return self.addr[0]

    @property
    def port(self) -> int:
        return self.addr[1]


@dataclass(frozen=True, kw_only=True)
class FilesystemConfig:
    rootdirectory: Path = key("./data", k.path, "a registry:2 filesystem root works as is")


@dataclass(frozen=True, kw_only=True)
class S3Config:
    region: str = key("us-east-1", k.text)
    regionendpoint: str = key("", k.text, "e.g. https://gateway.storjshare.io")
    bucket: str = key("", k.text)
    accesskey: str = key("", k.text)
    secretkey: str = key("", k.text)
    rootdirectory: str = key("", k.text, "registry:2's rootdirectory prefix, if it has one")


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    driver: str = key("filesystem", k.choice(DRIVERS, "driver"), 'or "s3"')
    delete: bool = key(False, k.boolean, "allow DELETE of manifests (by digest) and blobs, as registry:2's storage.delete")
    filesystem: FilesystemConfig = section(FilesystemConfig)
    s3: S3Config = section(S3Config)


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    dir: Path = key("./cache", k.path)
    size: int = key("10GiB", k.size, "bytes of content on disk; least recently used is evicted below it")
    tag_ttl: float = key("30s", k.duration, "how long a tag → digest answer is trusted")
    link_ttl: float = key("1h", k.duration, 'how long "repository X links digest D" is trusted (deletes elsewhere show after it,\n'
                          '  or at once with registry events: see "Registry events")')
    manifest_memory: int = key("64MiB", k.size, "bytes of manifests kept parsed in memory (LRU)")
    link_memory: int = key("16MiB", k.bounded_size(64 * 1024, 2**63, "must be at least 64KiB"),
                           "bytes of tag and link answers kept in memory (LRU; at least 64KiB)")


@dataclass(frozen=True, kw_only=True)
class FillConfig:
    part_size: int = key("64MiB", k.bounded_size(64 * 1024, 2**63, "must be at least 64KiB"),
                         "largest ranged GET; parts never straddle a multiple of it (Storj segments are 64 MiB)")
    first_part_size: int = key("4MiB", k.size, "small first part: fast first byte (its GET also tells the size)")
    min_part_size: int = key("2MiB", k.bounded_size(64 * 1024, 2**63, "must be at least 64KiB"),
                             "smallest planned part (capped at part_size): a GET's TTFB stays small against its transfer")
    parallelism: int = key(24, k.whole(1, 256), "ranged GETs in flight per fill (Storj: ~23 MB/s one stream, ~330 MB/s with 24)")
    max_connections: int = key(32, k.whole(1, 4096), "ranged GETs in flight on the whole node, shared fairly by all fills (~2 MiB RSS each)")
    # Reading an image manifest starts background fills of its layers into free room (never evicting).
    prefetch: bool = key(True, k.boolean, "an image manifest served starts background fills of its layers (free room only)")
    prefetch_max_bytes: int = key("2GiB", k.size, "layer bytes one manifest prefetches at most (larger layers: left to the client)")
    prefetch_inflight_bytes: int = key("1GiB", k.size, "layer bytes being prefetched at once on this edge")


@dataclass(frozen=True, kw_only=True)
class UploadConfig:
    part_size: int = key("64MiB", k.bounded_size(5 * 1024**2, 5 * GIB, "must be between 5MiB and 5GiB (S3 multipart part limits)"),
                         "S3 multipart part size for pushes (5MiB to 5GiB)")
    parallel_parts: int = key(8, k.whole(1, 64), "parts of one upload request on their way at once (1-64); disk: parallel_parts + 1 parts")
    max_size: int = key("", k.optional(k.size), "largest blob one push may send; above it: 413 DENIED. Unset: 64GiB or\n"
                        "10,000 x part_size, whichever is less; a larger value is refused at start", value=64 * GIB, shown="64GiB")


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    format: str = key("text", k.choice(LOG_FORMATS, "format"), 'access log lines for people; "json": one JSON object a line')
    access: bool = key(True, k.boolean, "one access log line per request, on stderr")


@dataclass(frozen=True, kw_only=True)
class HtpasswdConfig:
    realm: str = key("edge-mirror", k.text)
    path: str = key("", k.text, "bcrypt htpasswd file (htpasswd -B); re-read when it changes")


@dataclass(frozen=True, kw_only=True)
class TokenConfig:
    realm: str = key("", k.text, "the token server's URL (clients get it in the challenge)")
    service: str = key("", k.text)
    issuer: str = key("", k.text)
    rootcertbundle: str = key("", k.text, "PEM certificates the token signing keys chain to")
    jwks: str = key("", k.text, "optional JSON Web Key Set (distribution 3.x)")


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    """Who may do what; the names follow registry:2's ``auth:`` block."""

    method: str = key("none", k.choice(AUTH_METHODS, "method"), " | ".join(AUTH_METHODS))
    # Unset: the method's default, ("pull",) for none and () otherwise (validate.py).
    anonymous: tuple[str, ...] = key(None, k.nullable(k.members(ANONYMOUS_ACTIONS, "action")),
                                     "what a request without credentials may do (pull, push, delete);\n"
                                     "  default [\"pull\"] for method none, [] for htpasswd and token",
                                     value=("pull",), shown=["pull"])
    anonymous_repositories: tuple[str, ...] = key(["**"], k.strings, 'globs those anonymous rights cover ("*" one path component, "**" any)')
    htpasswd: HtpasswdConfig = section(HtpasswdConfig)
    token: TokenConfig = section(TokenConfig, "the central registry:2's auth.token settings, copied as they are")


@dataclass(frozen=True, kw_only=True)
class PeersConfig:
    """The edges of this region that share their caches (off when neither `addresses` nor `dns` is set).

    Addresses are canonical ``host:port`` strings (``[v6]:port``): every edge hashes the same strings."""

    addresses: tuple[str, ...] = key([], k.peer_addresses, '"host:port" of every edge of the region, this one included'
                                     '  (MIRROR_PEERS_ADDRESSES="a:1,b:2")')
    dns: str = key("", k.text, "or a name whose A/AAAA records are the region's edges (a headless Service)")
    port: int = key(5000, k.whole(1, 65535), "the edges' port, with dns")
    refresh: float = key("30s", k.duration, "how often dns is re-resolved; also how long a failing peer is left out")
    secret: str = key("", k.verbatim, "shared by the region's edges (≥ 16 characters): signs every peer request")
    self_address: str = key("", k.peer_address, "this edge's address as its peers reach it; default http.addr unless that is a\n"
                            "  wildcard (0.0.0.0): then required, e.g. MIRROR_PEERS_SELF=$(POD_IP):5000", name="self")
    timeout: float = key("3s", k.duration, "connect + headers from a peer; past it the bucket is read instead")

    @property
    def enabled(self) -> bool:
        return bool(self.addresses or self.dns)


@dataclass(frozen=True, kw_only=True)
class EventsConfig:
    """What registry:2 notification events do on this edge (received at ``POST /admin/notifications``)."""

    repositories: tuple[str, ...] = key(["**"], k.strings, "globs of repositories whose pushes are warmed (deletes are always forgotten)")
    platforms: tuple[str, ...] = key([], k.platforms, 'of an index, the platforms warmed ("linux/amd64", "linux/arm/v7"); [] = every one')
    max_event_bytes: int = key("4GiB", k.size, "blob bytes one pushed image warms at most (the rest is filled on first pull)")
    max_inflight_bytes: int = key("1GiB", k.size, "blob bytes being warmed on this edge at once")
    queue_size: int = key(1000, k.whole(1, 1_000_000), "events waiting (per kind: forget, warm); when full the receiver answers 503 + Retry-After")


@dataclass(frozen=True, kw_only=True)
class AdminConfig:
    """The operator endpoint (``/admin/...``): off unless enabled, and then only with the bearer `token`."""

    enabled: bool = key(False, k.boolean, "/admin/stats and /admin/purge (for edge-mirror stats / purge)")
    token: str = key("", k.verbatim, "required when enabled: Authorization: Bearer <token>; MIRROR_ADMIN_TOKEN", secret=True)


@dataclass(frozen=True, kw_only=True)
class RemoteConfig:
    """A remote registry (Docker Hub, ...) served under ``?ns=<ns>`` with its content kept under `prefix`."""

    ns: str = key("", k.registry_host, "the containerd ?ns= value; docker.io also answers to index.docker.io, registry-1.docker.io",
                  required=True)
    aliases: tuple[str, ...] = ()  # other names of ns (remote.NS_ALIASES), not a setting
    default: bool = key(False, k.boolean, "also serves requests without ns (dockerd's registry-mirrors)")
    url: str = key("", k.base_url, required=True)
    username: str = key("", k.verbatim, "optional; or MIRROR_UPSTREAM_0_USERNAME / MIRROR_UPSTREAM_0_PASSWORD")
    password: str = key("", k.verbatim, secret=True)
    prefix: str = key("", k.repository_prefix, "bucket repository prefix: dockerhub/library/alpine", required=True)
    tag_ttl: float = key("10m", k.duration, "how long a remote tag answer is trusted")
    # Non-public networks this route's redirects and token realm may lead to (see mirror/upstream/dialing.py).
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = key(
        [], k.networks, 'non-public CIDRs redirects/token realms may lead to, e.g. ["10.20.0.0/16"]')


@dataclass(frozen=True, kw_only=True)
class NotificationEndpoint:
    """One ``[[notifications.endpoints]]`` table: where this edge sends events for pushes and deletes through it
    (the keys of registry:2's ``notifications.endpoints``)."""

    name: str = key("", k.required_text, required=True)
    url: str = key("", k.http_url, required=True)
    headers: tuple[tuple[str, str], ...] = key({}, k.headers, secret=True)
    timeout: float = key("1s", k.duration, "per POST")
    threshold: int = key(10, k.whole(1, 1_000_000), "failures retried at once before backing off")
    backoff: float = key("1s", k.duration, "pause between retries after threshold failures (or the receiver's Retry-After)")
    ignoredmediatypes: tuple[str, ...] = key([], k.strings, "events whose target has one of these media types are not sent")
    # The README shows the ``ignore`` table inline, with the first key's help.
    ignore_mediatypes: tuple[str, ...] = key([], k.strings, "the same, and actions (push, delete) not sent", name="ignore.mediatypes")
    ignore_actions: tuple[str, ...] = key([], k.strings, name="ignore.actions")
    disabled: bool = key(False, k.boolean, "true: nothing is sent to it (registry:2's disabled)")
    queue_size: int = key(1000, k.whole(1, 1_000_000), "events waiting for this endpoint; beyond it the newest is dropped (counted)")


@dataclass(frozen=True, kw_only=True)
class Config:
    http: HttpConfig = section(HttpConfig)
    storage: StorageConfig = section(StorageConfig)
    cache: CacheConfig = section(CacheConfig)
    fill: FillConfig = section(FillConfig)
    upload: UploadConfig = section(UploadConfig)
    log: LogConfig = section(LogConfig)
    auth: AuthConfig = section(AuthConfig, "names follow registry:2's auth: block; see SECURITY.md")
    peers: PeersConfig = section(PeersConfig, "the edges of this region share their caches (off unless addresses or dns is set)")
    events: EventsConfig = section(EventsConfig, "registry:2 notification events received at POST /admin/notifications (needs [admin])")
    admin: AdminConfig = section(AdminConfig)
    upstreams: tuple[RemoteConfig, ...] = tables(
        "upstream", RemoteConfig, example={"ns": "docker.io", "default": True, "url": "https://registry-1.docker.io", "prefix": "dockerhub"}
    )
    notifications: tuple[NotificationEndpoint, ...] = tables(
        "notifications.endpoints", NotificationEndpoint,
        "optional, repeatable: registry:2's notifications.endpoints, for pushes/deletes through this edge",
        example={
            "name": "region-b",
            "url": "http://edge-mirror-events.region-b.example:5000/admin/notifications",
            "headers": {"Authorization": ["Bearer <region-b admin.token>"]},
        },
    )
