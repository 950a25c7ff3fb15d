"""Peer requests are signed with the region's shared secret: an HMAC-SHA256 of the request and a timestamp.

The secret itself never crosses the wire, and a captured signature is good only for the same request within
`MAX_SKEW` seconds (which would return the same bytes its sender already saw).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "EdgePeer"
MAX_SKEW = 120


def _mac(secret: str, method: str, path: str, range_header: str, timestamp: int) -> str:
    message = f"{method}\n{path}\n{range_header}\n{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path: str, range_header: str, now: float | None = None) -> str:
    """The ``Authorization`` value for a peer request."""
    timestamp = int(time.time() if now is None else now)
    return f"{SCHEME} {timestamp}:{_mac(secret, method, path, range_header, timestamp)}"


def verify(secret: str, authorization: str | None, method: str, path: str, range_header: str, now: float | None = None) -> bool:
    """Whether `authorization` signs this request with `secret`, recently enough."""
    if not secret or not authorization:
        return False
    scheme, _, credentials = authorization.partition(" ")
    stamp, _, mac = credentials.partition(":")
    if scheme != SCHEME or not stamp.isdigit() or len(stamp) > 12:
        return False
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > MAX_SKEW:
        return False
    expected = _mac(secret, method, path, range_header, timestamp)
    return hmac.compare_digest(mac.encode(errors="replace"), expected.encode())
