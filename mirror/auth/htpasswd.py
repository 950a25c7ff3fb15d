"""Basic credentials checked against a bcrypt htpasswd file, as registry:2's ``htpasswd`` auth does.

Only bcrypt entries (``$2a$``/``$2b$``/``$2y$``, cost 4–31) can ever match, as in registry:2. Any other entry —
an empty hash (``bob:``), another scheme (``{SHA}``, ``$apr1$``, crypt), a line without ``user:`` — is refused
when the file is read: named in a warning (user, file, line; never the hash), counted in
``mirror_auth_htpasswd_refused_entries``, and its user treated as unknown.

An unknown (or refused) user costs the same bcrypt check as a known one: the check runs against a dummy hash of
a random per-process password, made with ``bcrypt.hashpw`` at the cost most of the file's entries use (the higher
one on a tie), again whenever the file is re-read. The file is re-read when its modification time, size or inode
changes (checked at most once a second); the new users take effect together with their dummy hash. bcrypt is slow
by design, so checks (and making the dummy hash) run in a worker thread, and a successful check is remembered for
a short while under an HMAC of the header with a per-process key (the password itself is never kept; wrong
passwords are never remembered, so each costs a full check).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import bcrypt
from cachetools import TTLCache

from mirror import metrics
from mirror.config import ConfigError

log = logging.getLogger(__name__)

STAT_INTERVAL_SECONDS = 1.0
REMEMBER_SECONDS = 60.0
REMEMBERED = 4096
MAX_HEADER_BYTES = 4096
COST_WITHOUT_ENTRIES = 10  # the dummy's cost when no entry is valid (nobody to tell apart then)
# A bcrypt hash as htpasswd -B, Python's bcrypt and Go's x/crypto/bcrypt write it: version, cost, 22 + 31 chars.
_BCRYPT = re.compile(rb"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_DUMMY_PASSWORD = secrets.token_bytes(24)  # nobody knows it, so the dummy hash never matches


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


@dataclass(frozen=True)
class Entries:
    """One reading of the file: the users that can log in, and the dummy hash unknown users are checked against."""

    users: dict[str, bytes]
    dummy: bytes
    refused: int


def bcrypt_cost(hashed: bytes) -> int | None:
    """The cost of a well-formed bcrypt hash, else None (the entry can never match)."""
    match = _BCRYPT.fullmatch(hashed)
    return int(match.group(1)) if match else None


def dummy_cost(costs: list[int]) -> int:
    """The cost most entries use (the higher on a tie), so an unknown user looks like most known ones."""
    if not costs:
        return COST_WITHOUT_ENTRIES
    counted = collections.Counter(costs)
    return max(counted, key=lambda cost: (counted[cost], cost))


def read_entries(path: Path) -> tuple[dict[str, bytes], list[int], int]:
    """(usable users, their costs, refused entries) of the file; each refused entry is logged, never its hash."""
    users: dict[str, bytes] = {}
    costs: dict[str, int] = {}
    refused = 0
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, hashed = line.partition(":")
        cost = bcrypt_cost(hashed.strip().encode()) if colon and user else None
        if cost is None:
            refused += 1
            users.pop(user, None)  # a later bad line for a user disables it, as registry:2's last entry wins
            costs.pop(user, None)
            log.warning(
                "htpasswd entry refused: %s line %d (user %r) is not user:<bcrypt hash>; that user can never log in",
                path, number, user if colon else "",
            )
            continue
        users[user], costs[user] = hashed.strip().encode(), cost
    return users, list(costs.values()), refused


def load_entries(path: Path) -> Entries:
    """Read the file and make its dummy hash (slow: call it off the event loop)."""
    users, costs, refused = read_entries(path)
    dummy = bcrypt.hashpw(_DUMMY_PASSWORD, bcrypt.gensalt(rounds=dummy_cost(costs)))
    return Entries(users, dummy, refused)


class Htpasswd:
    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock  # tells when the file is due to be stat'ed again; tests pass a fake one
        self._signature: tuple[int, int, int] | None = None
        self._checked_at = 0.0
        self._remembered: TTLCache[bytes, str] = TTLCache(maxsize=REMEMBERED, ttl=REMEMBER_SECONDS, timer=clock)
        self._key = secrets.token_bytes(32)
        try:
            self._signature = self._stat()
            self._use(load_entries(self.path))
        except OSError as error:
            raise ConfigError("auth.htpasswd.path", f"cannot read {path}: {error}") from None

    def _stat(self) -> tuple[int, int, int]:
        status = os.stat(self.path)
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def _use(self, entries: Entries) -> None:
        self._entries = entries
        self._remembered.clear()
        metrics.htpasswd_refused_entries.set(entries.refused)
        log.info("read %d users from %s (%d entries refused)", len(entries.users), self.path, entries.refused)

    async def _refresh(self) -> None:
        now = self._clock()
        if now - self._checked_at < STAT_INTERVAL_SECONDS:
            return
        self._checked_at = now
        try:
            signature = self._stat()
            if signature == self._signature:
                return
            entries = await asyncio.to_thread(load_entries, self.path)
        except OSError as error:
            log.warning("keeping the previous users: cannot re-read %s: %s", self.path, error)
            return
        self._signature = signature
        self._use(entries)

    async def check(self, authorization: str) -> str | None:
        """The user name if `authorization` holds valid Basic credentials, else None."""
        credentials = parse_basic(authorization)
        if credentials is None:
            return None
        await self._refresh()
        user, password = credentials
        tag = hmac.new(self._key, authorization.encode(), hashlib.sha256).digest()
        if self._remembered.get(tag) == user:
            return user
        entries = self._entries
        hashed = entries.users.get(user)
        ok = await asyncio.to_thread(_bcrypt_matches, password.encode(), entries.dummy if hashed is None else hashed)
        if not ok or hashed is None:
            return None
        if entries is self._entries:  # not remembered across a re-read that may have changed the user
            self._remembered[tag] = user
        return user


def _bcrypt_matches(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a password over 72 bytes
        return False
