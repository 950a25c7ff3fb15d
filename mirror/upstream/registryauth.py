"""How `RemoteRegistry` answers a remote's ``401``: the route's Basic credentials, or a Bearer token fetched from
the challenge's realm and cached per scope until shortly before it expires. The route's credentials go to the
realm only when it is on the remote's own host or registrable domain (`realm_may_see_credentials`); the realm is
dialed only where the route's `DialPolicy` allows (`raise_if_refused` turns a refused dial into
`DialRefusedError`, logged with the address)."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import aiohttp
import cachetools
import orjson

from mirror.config import RemoteConfig
from mirror.upstream.base import BackendError
from mirror.upstream.dialing import DialPolicy, parse_challenge, realm_may_see_credentials, refused_cause

log = logging.getLogger(__name__)

TOKEN_MAX_SIZE = 64 * 1024
# A token is dropped this long before the remote says it expires, so it is never sent stale.
TOKEN_EXPIRY_MARGIN = 10.0
DEFAULT_TOKEN_LIFETIME = 60.0
TOKEN_CACHE_ENTRIES = 4096


class RateLimited(BackendError):
    """The remote answered 429; `retry_after` is its ``Retry-After`` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DialRefusedError(BackendError):
    """A redirect or token realm pointed at an address this route may not dial (the log names it)."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires: float


class RegistryAuth:
    """The Authorization header for one route's requests: the cached token of a scope, or a challenge's answer."""

    def __init__(self, settings: RemoteConfig, policy: DialPolicy) -> None:
        self.route = settings.ns
        self._host = urlparse(settings.url).hostname or ""
        self._policy = policy
        self._tokens: cachetools.TLRUCache[str, _Token] = cachetools.TLRUCache(
            maxsize=TOKEN_CACHE_ENTRIES, ttu=lambda _key, token, _now: token.expires, timer=time.monotonic
        )
        self._token_lock = asyncio.Lock()
        credentials = f"{settings.username}:{settings.password}".encode()
        self._basic = "Basic " + base64.b64encode(credentials).decode() if settings.username else None

    def cached(self, scope: str) -> dict[str, str]:
        """The header of a token still valid for `scope` (none yet: no header, the request goes anonymously)."""
        token = self._tokens.get(scope)
        return {"Authorization": f"Bearer {token.value}"} if token else {}

    async def answer(self, session: aiohttp.ClientSession, challenge: str, scope: str) -> dict[str, str]:
        """The Authorization header that answers a 401's challenge."""
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self._basic is None:
                raise BackendError(f"{self.route} wants Basic credentials and the route has none")
            return {"Authorization": self._basic}
        if scheme != "bearer" or "realm" not in params:
            raise BackendError(f"{self.route}: unusable auth challenge {challenge[:120]!r}")
        async with self._token_lock:  # one token request per scope, however many callers wait for it
            token = self._tokens.get(scope) or await self._fetch_token(session, params, scope)
        return {"Authorization": f"Bearer {token.value}"}

    async def _fetch_token(self, session: aiohttp.ClientSession, params: dict[str, str], scope: str) -> _Token:
        realm = params["realm"]
        parsed = urlparse(realm)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BackendError(f"{self.route}: token realm {realm[:120]!r} is not an http(s) URL")
        query = {key: value for key, value in (("service", params.get("service", "")), ("scope", scope)) if value}
        auth: dict[str, str] = {}
        if self._basic is not None:
            if realm_may_see_credentials(self._host, parsed.hostname):
                auth = {"Authorization": self._basic}
            else:
                log.warning("%s: token realm %s is outside the registry's domain; asking anonymously", self.route, parsed.hostname)
        try:
            self._policy.check_url(realm)
            async with session.get(realm, params=query, headers=auth, allow_redirects=False) as response:
                if response.status == 429:
                    raise RateLimited(f"{self.route}: token realm is rate limiting", 60)
                if response.status != 200:
                    raise BackendError(f"{self.route}: token realm answered {response.status}")
                body = await response.content.read(TOKEN_MAX_SIZE)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise_if_refused(self.route, error, "the token realm", realm)
            raise BackendError(f"{self.route}: token realm: {error}") from error
        try:
            document = orjson.loads(body)
            value = str(document.get("token") or document.get("access_token") or "")
            lifetime = float(document.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
            raise BackendError(f"{self.route}: token realm sent no usable token") from None
        if not value:
            raise BackendError(f"{self.route}: token realm sent no token")
        token = _Token(value, time.monotonic() + max(0.0, lifetime - TOKEN_EXPIRY_MARGIN))
        if token.expires > time.monotonic():
            self._tokens[scope] = token
        return token


def raise_if_refused(route: str, error: BaseException, what: str, url: str) -> None:
        refused = refused_cause(error)
        if refused is None:
            return
        log.warning(
            "%s: refused to dial %s (%s) for %s %s; only the route's host, public addresses and its allowed_networks "
            "may be dialed", route, refused.address, refused.reason, what, url[:200],
        )
        raise DialRefusedError(f"{route}: {what} pointed at an address this route may not dial (see the edge's log)") from error
