"""Digests as the registry API writes them: ``sha256:<hex>``."""

from __future__ import annotations

import hashlib


def digest_of(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
