"""Where settings come from: defaults, then the TOML file, then ``MIRROR_*`` environment overrides."""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from mirror.config.notifications import _validate_endpoints
from mirror.config.remote import _remote_tables, _validate_remotes
from mirror.config.settings import AdminConfig, Config
from mirror.config.validate import _validate
from mirror.config.values import ConfigError, parse_bool

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
        "max_connections_per_client": 64,
        "header_timeout": "10s",
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
        # Reading an image manifest starts background fills of its layers into free room (never evicting).
        "prefetch": False,
        "prefetch_max_bytes": "2GiB",
        "prefetch_inflight_bytes": "1GiB",
    },
    "upload": {"part_size": "64MiB", "max_size": "", "parallel_parts": 8},  # max_size unset: 64GiB, or less if 10,000 parts hold less
    "admin": {"enabled": False, "token": ""},
    "log": {"format": "text", "access": True},
    # anonymous: None means "the method's default" (["pull"] for none, [] otherwise).
    "auth": {"method": "none", "anonymous": None, "anonymous_repositories": ["**"]},
    "auth.htpasswd": {"realm": "edge-mirror", "path": ""},
    "auth.token": {"realm": "", "service": "", "issuer": "", "rootcertbundle": "", "jwks": ""},
    "peers": {"addresses": [], "dns": "", "port": 5000, "refresh": "30s", "secret": "", "self": "", "timeout": "3s"},
    # registry:2 notification events received at POST /admin/notifications (needs [admin]): what a push warms.
    "events": {
        "repositories": ["**"],
        "platforms": [],
        "max_event_bytes": "4GiB",
        "max_inflight_bytes": "1GiB",
        "queue_size": 1000,
    },
}

# The package's name, not this module's: operators (and tests) filter on "mirror.config".
log = logging.getLogger("mirror.config")


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
    notifications: Any = {}
    if path is not None:
        try:
            document = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("--config", f"file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError("--config", f"{path} is not valid TOML: {error}") from None
        remotes = _remote_tables(document.pop("upstream", []))
        notifications = document.pop("notifications", {})
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
    endpoints = _validate_endpoints(notifications)
    return replace(settings, upstreams=_validate_remotes(remotes), admin=admin, notifications=endpoints)
