"""Typed settings: defaults, then a TOML file, then ``MIRROR_*`` environment overrides.

Each key is declared once, in `settings.py` (its default, its kind, its help); `python -m mirror.config` prints
the README's configuration block from those declarations.

Every key ``[section.sub] key`` can be overridden by ``MIRROR_SECTION_SUB_KEY`` (registry:2's ``REGISTRY_``
convention). The S3 keys carry registry:2's S3 driver names so an operator can copy their registry's settings.
Any bad value raises `ConfigError`, whose text names the key; the CLI prints it and exits non-zero.
"""

from mirror.config.loader import DEFAULTS, load
from mirror.config.remote import NS_ALIASES
from mirror.config.schema import env_name
from mirror.config.settings import (
    ANONYMOUS_ACTIONS,
    AUTH_METHODS,
    DRIVERS,
    LOG_FORMATS,
    AdminConfig,
    AuthConfig,
    CacheConfig,
    Config,
    EventsConfig,
    FilesystemConfig,
    FillConfig,
    HtpasswdConfig,
    HttpConfig,
    LogConfig,
    NotificationEndpoint,
    PeersConfig,
    RemoteConfig,
    S3Config,
    StorageConfig,
    TokenConfig,
    UploadConfig,
)
# What the rest of the package takes from here; the other parsers are the settings' own (`kinds.py`, `values.py`).
from mirror.config.values import GIB, KIB, MAX_PARTS, MIB, ConfigError, canonical_addr, parse_duration, parse_size

__all__ = [
    "ANONYMOUS_ACTIONS",
    "AUTH_METHODS",
    "DEFAULTS",
    "DRIVERS",
    "GIB",
    "KIB",
    "LOG_FORMATS",
    "MAX_PARTS",
    "MIB",
    "NS_ALIASES",
    "AdminConfig",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "EventsConfig",
    "FilesystemConfig",
    "FillConfig",
    "HtpasswdConfig",
    "HttpConfig",
    "LogConfig",
    "NotificationEndpoint",
    "PeersConfig",
    "RemoteConfig",
    "S3Config",
    "StorageConfig",
    "TokenConfig",
    "UploadConfig",
    "canonical_addr",
    "env_name",
    "load",
    "parse_duration",
    "parse_size",
]
