"""Basic credentials checked against a bcrypt htpasswd file, as registry:2's ``htpasswd`` auth does.

Only bcrypt entries (``$2a$``/``$2b$``/``$2y$``) can match, as in registry:2. An unknown user costs the same
bcrypt check as a known one (against a fixed dummy hash), so timing does not tell which users exist. The file is
re-read when its modification time, size or inode changes (checked at most once a second). bcrypt is slow by
design, so checks run in a worker thread, and a successful check is remembered for a short while under an HMAC
of the header with a per-process key (the password itself is never kept).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path

import bcrypt
from cachetools import TTLCache

from mirror.config import ConfigError

log = logging.getLogger(__name__)

STAT_INTERVAL_SECONDS = 1.0
REMEMBER_SECONDS = 60.0
REMEMBERED = 4096
MAX_HEADER_BYTES = 4096
_DUMMY_HASH = bcrypt.hashpw(b"not a password of anyone", bcrypt.gensalt(rounds=5))


def parse_basic(authorization: str) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` → (user, password), or None when the header is not that."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(authorization) > MAX_HEADER_BYTES:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


class Htpasswd:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._users: dict[str, bytes] = {}
        self._signature: tuple[int, int, int] | None = None
        self._checked_at = 0.0
        self._remembered: TTLCache[bytes, str] = TTLCache(maxsize=REMEMBERED, ttl=REMEMBER_SECONDS)
        self._key = secrets.token_bytes(32)
        try:
            self._reload()
        except OSError as error:
            raise ConfigError("auth.htpasswd.path", f"cannot read {path}: {error}") from None

    def _reload(self) -> None:
        status = os.stat(self.path)
        signature = (status.st_mtime_ns, status.st_size, status.st_ino)
        if signature == self._signature:
            return
        users: dict[str, bytes] = {}
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, colon, hashed = line.partition(":")
            if colon and user:
                users[user] = hashed.strip().encode()
        self._users, self._signature = users, signature
        self._remembered.clear()
        log.info("read %d users from %s", len(users), self.path)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < STAT_INTERVAL_SECONDS:
            return
        self._checked_at = now
        try:
            self._reload()
        except OSError as error:
            log.warning("keeping the previous users: cannot re-read %s: %s", self.path, error)

    async def check(self, authorization: str) -> str | None:
        """The user name if `authorization` holds valid Basic credentials, else None."""
        credentials = parse_basic(authorization)
        if credentials is None:
            return None
        self._refresh()
        user, password = credentials
        tag = hmac.new(self._key, authorization.encode(), hashlib.sha256).digest()
        if self._remembered.get(tag) == user:
            return user
        hashed = self._users.get(user)
        ok = await asyncio.to_thread(_bcrypt_matches, password.encode(), hashed or _DUMMY_HASH)
        if ok and hashed is not None:
            self._remembered[tag] = user
            return user
        return None


def _bcrypt_matches(password: bytes, hashed: bytes) -> bool:
    if not hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
        bcrypt.checkpw(password[:72], _DUMMY_HASH)  # same cost as a real check
        return False
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a password over 72 bytes, or a damaged hash
        return False
