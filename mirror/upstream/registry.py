"""A Registry v2 client to one remote registry (Docker Hub, ghcr.io, another registry:2): reads only.

What it does that a plain HTTP client does not:

* **Auth.** Requests go out anonymously (or with the route's Basic credentials when the remote asks for Basic).
  A ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` starts the token dance: a token
  for ``repository:<name>:pull`` is fetched from the realm and cached per scope until it expires. The route's
  credentials go to the realm only when it is on the remote's own host or registrable domain
  (``auth.docker.io`` for ``registry-1.docker.io``; an IP address must match exactly), as distribution does
  since CVE-2026-33540; any other realm gets an anonymous token request.
* **Redirects** (blob storage, CDNs) are followed by hand, without the ``Authorization`` header.
* **Where it dials.** Redirects and token realms lead only to the route's own host, public addresses or the
  route's ``allowed_networks`` (`mirror.upstream.dialing`, checked on the resolved addresses); anything else is
  refused before it is dialed: `DialRefusedError`, logged with the address, counted as ``status="refused"``.
* **Rate limits.** ``429`` raises `RateLimited` with the remote's ``Retry-After``; ``ratelimit-remaining``
  feeds a gauge per route.
* **Fail fast.** After a connect failure or timeout the remote is not dialed again for `UNREACHABLE_PAUSE`.
* **Ranges.** Blob reads ask for ``Range``; a remote that ignores it (``200``) is read from the start and the
  bytes before the range are skipped.

The auth (Basic, tokens, the realm's credentials) is `mirror.upstream.registryauth`.

Errors follow the `Upstream` contract: `NotFound` for 404, `BackendError` for everything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator
from urllib.parse import urljoin, urlparse

import aiohttp
from aiohttp.abc import AbstractResolver

from mirror import metrics
from mirror.config import RemoteConfig
from mirror.httpranges import parse_content_range
from mirror.mediatypes import MANIFEST_TYPES
from mirror.reference import Digest, parse_digest
from mirror.upstream.base import STREAM_CHUNK, BackendError, NotFound
from mirror.upstream.dialing import DialPolicy, GuardedResolver
from mirror.upstream.registryauth import (
    DialRefusedError,
    RateLimited,
    RegistryAuth,
    raise_if_refused,
)

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
# After a connect failure or timeout, requests fail at once for this long instead of each waiting for the
# connect timeout: a remote that is down costs its clients (and the stale-tag fallback) no waiting.
UNREACHABLE_PAUSE = 2.0
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)


class RemoteRegistry:
    """Reads manifests and blobs of one remote registry; `route` (the configured ns) labels its metrics."""

    def __init__(
        self, settings: RemoteConfig, pool_size: int = 32, connect_timeout: float = 3.0, resolver: AbstractResolver | None = None
    ) -> None:
        """`resolver` answers DNS (the system's by default; tests inject one); the route's policy filters it."""
        self.settings = settings
        self._policy = DialPolicy(settings.url, settings.allowed_networks)
        self._resolver = resolver
        self.route = settings.ns
        self._base = settings.url
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._unreachable_until = 0.0
        self._auth = RegistryAuth(settings, self._policy)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size, resolver=GuardedResolver(self._policy, self._resolver)),
            timeout=aiohttp.ClientTimeout(sock_connect=self._connect_timeout, sock_read=60),
            auto_decompress=False,
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- the registry API ---------------------------------------------------------------------------------

    async def probe(self) -> None:
        response = await self._send("GET", "/v2/", None, {})
        response.release()

    async def resolve(self, name: str, reference: str) -> Digest:
        """The digest `name:reference` points at, from a HEAD (Docker Hub does not count HEADs)."""
        response = await self._send("HEAD", f"/v2/{name}/manifests/{reference}", name, {"Accept": ACCEPT_MANIFESTS})
        response.release()
        header = response.headers.get("Docker-Content-Digest", "")
        try:
            return parse_digest(header)
        except Exception:
            raise BackendError(f"{self.route}: {name}:{reference} answered without a usable digest ({header!r})") from None

    async def manifest(self, name: str, digest: Digest, max_size: int) -> bytes:
        response = await self._send("GET", f"/v2/{name}/manifests/{digest}", name, {"Accept": ACCEPT_MANIFESTS})
        try:
            if (response.content_length or 0) > max_size:
                raise BackendError(f"{self.route}: manifest {digest} is larger than {max_size} bytes")
            data = await response.content.read(max_size + 1)
        except aiohttp.ClientError as error:
            raise BackendError(f"{self.route}: manifest {digest}: {error}") from error
        finally:
            response.release()
        if len(data) > max_size:
            raise BackendError(f"{self.route}: manifest {digest} is larger than {max_size} bytes")
        metrics.remote_bytes.labels(self.route).inc(len(data))
        return data

    async def blob_size(self, name: str, digest: Digest) -> int:
        response = await self._send("HEAD", f"/v2/{name}/blobs/{digest}", name, {})
        response.release()
        if response.content_length is None:
            raise BackendError(f"{self.route}: HEAD of blob {digest} gave no Content-Length")
        return response.content_length

    async def blob_range(self, name: str, digest: Digest, start: int, end: int | None) -> tuple[int, AsyncIterator[bytes]]:
        """The blob's total size and a stream of bytes ``[start, end)`` (to its end when `end` is None)."""
        last = "" if end is None else str(end - 1)
        response = await self._send("GET", f"/v2/{name}/blobs/{digest}", name, {"Range": f"bytes={start}-{last}"})
        if response.status == 206:
            served = parse_content_range(response.headers.get("Content-Range"))
            if served is None or served.size is None:
                response.release()
                raise BackendError(f"{self.route}: blob {digest}: 206 without a total size in Content-Range")
            size, skip = served.size, 0
        else:  # 200: the remote ignored Range and sends the whole blob
            if response.content_length is None:
                response.release()
                raise BackendError(f"{self.route}: blob {digest} has no Content-Length")
            size, skip = response.content_length, start
        stop = size if end is None else min(end, size)
        return size, self._body(response, skip, stop - start, digest)

    async def _body(self, response: aiohttp.ClientResponse, skip: int, length: int, digest: Digest) -> AsyncIterator[bytes]:
        counted = metrics.remote_bytes.labels(self.route)
        sent = 0
        try:
            async for chunk in response.content.iter_chunked(STREAM_CHUNK):
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                chunk = chunk[: length - sent]
                if chunk:
                    sent += len(chunk)
                    counted.inc(len(chunk))
                    yield chunk
                if sent >= length:
                    break
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise BackendError(f"{self.route}: blob {digest}: {error}") from error
        finally:
            if sent < length or skip:
                response.close()  # a body we stop reading early cannot go back to the pool
            else:
                response.release()
        if sent != length:
            raise BackendError(f"{self.route}: blob {digest}: got {sent} of {length} bytes")

    # -- requests, auth, redirects --------------------------------------------------------------------------

    async def _send(self, method: str, path: str, name: str | None, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """One API request with auth and redirects; a response with status 200/206, or an exception."""
        op = "head" if method == "HEAD" else "get"
        try:
            response = await self._authorized(method, f"{self._base}{path}", name, headers)
        except BackendError as error:
            status = "rate_limited" if isinstance(error, RateLimited) else "refused" if isinstance(error, DialRefusedError) else "error"
            metrics.remote_requests.labels(self.route, op, status).inc()
            raise
        except NotFound:
            metrics.remote_requests.labels(self.route, op, "not_found").inc()
            raise
        metrics.remote_requests.labels(self.route, op, "ok").inc()
        return response

    async def _authorized(self, method: str, url: str, name: str | None, headers: dict[str, str]) -> aiohttp.ClientResponse:
        scope = f"repository:{name}:pull" if name else ""
        auth = self._auth.cached(scope)
        response = await self._follow(method, url, {**headers, **auth})
        if response.status == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.release()
            assert self._session is not None, "start() first"
            auth = await self._auth.answer(self._session, challenge, scope)
            response = await self._follow(method, url, {**headers, **auth})
        return self._check(response, url)

    async def _follow(self, method: str, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """Send, following redirects by hand: the next hop never gets our Authorization header."""
        assert self._session is not None, "start() first"
        if time.monotonic() < self._unreachable_until:
            raise BackendError(f"{self.route}: unreachable a moment ago; not retried for {UNREACHABLE_PAUSE:.0f}s")
        for hops in range(MAX_REDIRECTS + 1):
            try:
                self._policy.check_url(url)
                response = await self._session.request(method, url, headers=headers, allow_redirects=False)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                raise_if_refused(self.route, error, "a redirect" if hops else "the route", url)
                if isinstance(error, (aiohttp.ClientConnectorError, asyncio.TimeoutError)):
                    self._unreachable_until = time.monotonic() + UNREACHABLE_PAUSE
                raise BackendError(f"{self.route}: {method} {urlparse(url).path}: {error or type(error).__name__}") from error
            self._record_rate_limit(response)
            location = response.headers.get("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                return response
            response.release()
            url = urljoin(url, location)
            headers = {key: value for key, value in headers.items() if key.lower() != "authorization"}
        raise BackendError(f"{self.route}: more than {MAX_REDIRECTS} redirects")

    def _check(self, response: aiohttp.ClientResponse, url: str) -> aiohttp.ClientResponse:
        if response.status in (200, 206):
            return response
        response.release()
        path = urlparse(url).path
        if response.status == 404:
            raise NotFound(f"{self.route}: {path}")
        if response.status == 429:
            retry_after = response.headers.get("Retry-After", "")
            seconds = int(retry_after) if retry_after.isdigit() else 60
            raise RateLimited(f"{self.route} is rate limiting this mirror (retry after {seconds}s)", seconds)
        if response.status in (401, 403):
            raise BackendError(f"{self.route}: {path}: access denied ({response.status}); check the route's credentials")
        raise BackendError(f"{self.route}: {path}: HTTP {response.status}")

    def _record_rate_limit(self, response: aiohttp.ClientResponse) -> None:
        remaining = response.headers.get("ratelimit-remaining", "").partition(";")[0].strip()
        if remaining.isdigit():
            metrics.remote_ratelimit_remaining.labels(self.route).set(int(remaining))
