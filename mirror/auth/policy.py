"""The access decision: credentials → who → whether every access item the request needs is granted.

- ``none``: no credentials are looked at; the anonymous rights decide, and a refusal is 403 ``DENIED`` (there is
  nobody to log in to).
- ``htpasswd``: a valid user may do everything (as registry:2's htpasswd auth); otherwise the anonymous rights,
  else 401 with a ``Basic`` challenge. An empty user and password (``Basic Og==``, what podman, buildah, skopeo
  and CRI-O send to a Basic challenge when they have no credentials) is no credential: the anonymous rights.
- ``token``: a verified token grants its ``access`` claims, on top of the anonymous rights; otherwise 401 with
  registry:2's ``Bearer`` challenge (``invalid_token`` for a bad token, ``insufficient_scope`` for a good token
  without the rights).

Anonymous rights: the actions in ``anonymous`` on repositories matching ``anonymous_repositories`` (``**`` any
run of path components, ``*`` within one component). Listing the catalog is anonymous only when anonymous
``pull`` covers every repository (``**``), since the names are then no secret. ``/v2/`` needs no rights, but
with ``htpasswd`` or ``token`` a request without valid credentials gets the challenge there, as registry:2 does,
so clients learn where to log in.
"""

from __future__ import annotations

import re
from typing import Sequence

from mirror import metrics
from mirror.domain import Denied, Unauthorized
from mirror.auth import challenge
from mirror.auth.access import Access
from mirror.auth.htpasswd import Htpasswd, parse_basic
from mirror.auth.keys import load_trusted_keys
from mirror.auth.token import InvalidToken, TokenVerifier
from mirror.config import AuthConfig


def compile_glob(pattern: str) -> re.Pattern[str]:
    """``team/*`` matches ``team/app`` but not ``team/a/b``; ``team/**`` matches both; ``**`` matches all."""
    parts: list[str] = []
    for token in re.split(r"(\*\*|\*)", pattern):
        if token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]*")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


class Authorizer:
    """Decides one request's access items; raises `Denied` or `Unauthorized` (with registry:2's challenge) on a refusal."""

    def __init__(self, settings: AuthConfig) -> None:
        self.settings = settings
        self.method = settings.method
        self._anonymous = frozenset(settings.anonymous)
        self._globs = [compile_glob(pattern) for pattern in settings.anonymous_repositories]
        self._everything = "**" in settings.anonymous_repositories
        self._htpasswd = Htpasswd(settings.htpasswd.path) if self.method == "htpasswd" else None
        self._tokens = (
            TokenVerifier(settings.token, load_trusted_keys(settings.token)) if self.method == "token" else None
        )

    def anonymous_allows(self, item: Access) -> bool:
        if item.type == "repository":
            return item.action in self._anonymous and any(glob.fullmatch(item.name) for glob in self._globs)
        if item.type == "registry" and item.name == "catalog":
            return "pull" in self._anonymous and self._everything
        return False

    async def authorize(self, authorization: str | None, items: Sequence[Access]) -> str:
        """The subject ("" for anonymous) allowed to do all of `items`, or raise the refusal."""
        counter = metrics.auth_requests
        credentials = (authorization or "").strip()
        if self._htpasswd is not None and parse_basic(credentials) == ("", ""):
            credentials = ""  # containers/image's answer to a Basic challenge when it has no credentials
        if self.method == "none" or not credentials:
            if all(self.anonymous_allows(item) for item in items) and (items or self.method == "none"):
                counter.labels(self.method, "anonymous").inc()
                return ""
            counter.labels(self.method, "denied").inc()
            raise self._refusal(items, None)
        if self._htpasswd is not None:
            user = await self._htpasswd.check(credentials)
            if user is None:
                counter.labels(self.method, "invalid").inc()
                raise self._refusal(items, challenge.INVALID_TOKEN)
            counter.labels(self.method, "ok").inc()
            return user
        assert self._tokens is not None
        scheme, _, raw = credentials.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            counter.labels(self.method, "invalid").inc()
            raise self._refusal(items, None)
        try:
            claims = self._tokens.verify(raw.strip())
        except InvalidToken:
            counter.labels(self.method, "invalid").inc()
            raise self._refusal(items, challenge.INVALID_TOKEN) from None
        for item in items:
            if (item.type, item.name, item.action) not in claims.grants and not self.anonymous_allows(item):
                counter.labels(self.method, "denied").inc()
                raise self._refusal(items, challenge.INSUFFICIENT_SCOPE)
        counter.labels(self.method, "ok").inc()
        return claims.subject

    def _refusal(self, items: Sequence[Access], error: str | None) -> Denied | Unauthorized:
        detail = [item.detail() for item in items] or None
        if self.method == "none":
            wanted = ", ".join(sorted({item.action for item in items})) or "this"
            return Denied(
                f"{wanted} is not allowed on this edge: it grants anonymous {', '.join(sorted(self._anonymous)) or 'nothing'}"
                " (set [auth] anonymous, or configure htpasswd or token auth)",
                detail=detail,
            )
        if self.method == "htpasswd":
            header = challenge.basic(self.settings.htpasswd.realm)
        else:
            header = challenge.bearer(self.settings.token.realm, self.settings.token.service, items, error)
        return Unauthorized(header, detail=detail)
