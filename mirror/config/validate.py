"""The rules between keys (each key's own checks are its kind, in `settings.py`), and the defaults derived from
other keys. Each rule takes the parsed `Config` and returns it, changed where a default is derived."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from mirror.config import kinds
from mirror.config.settings import Config
from mirror.config.values import GIB, MAX_PARTS, ConfigError, canonical_addr


def check(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    """Apply every rule in turn; the first one broken raises ConfigError naming its key."""
    for rule in (_tls, _storage, _fill, _upload, _auth, _peers, _admin):
        config = rule(config, raw)
    return config


def _unset(value: object) -> bool:
    """A default derived from other keys, not derived yet: its kind (kinds.optional, kinds.nullable) gave None,
    which the field's type does not admit once `check` is done."""
    return value is None


def _tls(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    certfile, keyfile = config.http.certfile, config.http.keyfile
    if bool(certfile) != bool(keyfile):
        raise ConfigError("http.keyfile" if certfile else "http.certfile", "TLS needs both http.certfile and http.keyfile")
    return config


def _storage(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    s3 = config.storage.s3
    if config.storage.driver == "s3":
        if not s3.bucket:
            raise ConfigError("storage.s3.bucket", "is required when storage.driver is s3")
        if not s3.region:
            raise ConfigError("storage.s3.region", "is required when storage.driver is s3")
        if s3.regionendpoint:
            kinds.http_url("storage.s3.regionendpoint", s3.regionendpoint)
    return config


def _fill(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    fill = config.fill
    if fill.first_part_size > fill.part_size:
        raise ConfigError("fill.first_part_size", "must not be larger than fill.part_size")
    # A small part_size (tests, quick benchmarks) lowers the floor.
    return replace(config, fill=replace(fill, min_part_size=min(fill.min_part_size, fill.part_size)))


def _upload(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    upload = config.upload
    if _unset(upload.max_size):  # 64GiB, or less if 10,000 parts hold less
        return replace(config, upload=replace(upload, max_size=min(64 * GIB, MAX_PARTS * upload.part_size)))
    if upload.max_size > MAX_PARTS * upload.part_size:
        raise ConfigError(
            "upload.max_size",
            f"{raw['upload']['max_size']} needs more than {MAX_PARTS} parts of upload.part_size "
            f"({raw['upload']['part_size']}); raise upload.part_size or lower upload.max_size",
        )
    return config


def _auth(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    auth = config.auth
    if auth.method == "htpasswd" and not auth.htpasswd.path:
        raise ConfigError("auth.htpasswd.path", "is required when auth.method is htpasswd")
    if auth.method == "token":
        for name in ("realm", "service", "issuer"):
            if not getattr(auth.token, name):
                raise ConfigError(f"auth.token.{name}", "is required when auth.method is token")
        if not auth.token.rootcertbundle and not auth.token.jwks:
            raise ConfigError("auth.token.rootcertbundle", "token auth needs rootcertbundle or jwks (the keys tokens are signed with)")
    if _unset(auth.anonymous):  # the method's default
        return replace(config, auth=replace(auth, anonymous=("pull",) if auth.method == "none" else ()))
    return config


def _peers(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    peers, http = config.peers, config.http
    if peers.addresses and peers.dns:
        raise ConfigError("peers.dns", "set peers.addresses or peers.dns, not both")
    if not peers.self_address and http.host not in ("0.0.0.0", "::", ""):
        peers = replace(peers, self_address=canonical_addr(http.host, http.port))
    if not peers.enabled:
        return replace(config, peers=peers)
    if len(peers.secret) < 16:
        raise ConfigError("peers.secret", "needs at least 16 characters when peers are configured (the same on every edge)")
    if not peers.self_address:
        raise ConfigError("peers.self", "is required when http.addr listens on every interface: this edge's address as its peers reach it")
    if peers.addresses and peers.self_address not in peers.addresses:
        raise ConfigError("peers.self", f"{peers.self_address} is not one of peers.addresses")
    if peers.refresh < 1 or peers.timeout <= 0:
        raise ConfigError("peers.refresh" if peers.refresh < 1 else "peers.timeout", "is too short")
    return replace(config, peers=peers)


def _admin(config: Config, raw: Mapping[str, Mapping[str, Any]]) -> Config:
    if config.admin.enabled and len(config.admin.token) < 16:
        raise ConfigError("admin.token", "must be at least 16 characters when admin.enabled is true")
    return config
