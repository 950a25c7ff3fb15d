"""The ``WWW-Authenticate`` value registry:2 answers a refused request with, byte for byte in its layout.

Bearer (token auth): ``Bearer realm="…",service="…"[,scope="…"][,error="invalid_token"|"insufficient_scope"]``.
Basic (htpasswd): ``Basic realm="…"``. Values are quoted as Go's ``%q`` does for the printable ASCII a
repository name or realm can hold.
"""

from __future__ import annotations

from typing import Iterable

from mirror.auth.access import Access, scope_param

INVALID_TOKEN = "invalid_token"
INSUFFICIENT_SCOPE = "insufficient_scope"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer(realm: str, service: str, items: Iterable[Access], error: str | None = None) -> str:
    value = f"Bearer realm={_quote(realm)},service={_quote(service)}"
    scope = scope_param(items)
    if scope:
        value += f",scope={_quote(scope)}"
    if error:
        value += f",error={_quote(error)}"
    return value


def basic(realm: str) -> str:
    return f"Basic realm={_quote(realm)}"
