"""A remote registry for the remote-tier tests: the token server for a real registry:2 with token auth, and a
counting proxy in front of that registry.

* `RecordingTokenServer` is the tests' token server (`tests.support.tokens`, ES256 JWTs with an ``x5c`` header
  that registry:2 trusts through ``auth.token.rootcertbundle``): anonymous callers get ``pull``, the configured
  Basic credentials ``pull,push``. It records every request's scope and Authorization header.
* `CountingProxy` forwards to the registry (adding Docker Hub's ``ratelimit-remaining`` header) and records every
  request (method, path, status, body bytes). Its `mode` can be ``"429"`` (every request answered 429 with
  ``Retry-After: 7``), ``"down"`` (every connection dropped unanswered), ``"corrupt"`` (the first byte of every blob body flipped) or
  ``"redirect"`` (blob GETs sent to "blob
  storage" at ``/_storage/<hex>``, served from the remote's files under `storage_root`, recording the
  Authorization header each storage request carried). Blob storage is the proxy itself unless `redirect_to` names
  another base URL (another proxy, e.g. one bound to 127.0.0.2 with `bind`). `realm`, when set, replaces the realm
  of every ``WWW-Authenticate`` challenge the proxy forwards.

Both run as threads in the test process (stdlib HTTP servers on loopback).
"""

from __future__ import annotations

import http.client
import http.server
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support import tokens
from tests.support.ports import free_port

RETRY_AFTER = "7"
RATELIMIT_REMAINING = 97  # announced on every forwarded answer, as Docker Hub does


@dataclass
class TokenRequest:
    scope: str
    basic: str | None


class RecordingTokenServer(tokens.TokenServer):
    """The tests' token server (`tests.support.tokens`), recording each request's scope and Authorization."""

    def __init__(self, workdir: Path, username: str = "puller", password: str = "secret-pass") -> None:
        self.username, self.password = username, password
        self.requests: list[TokenRequest] = []
        signer = tokens.self_signed("remote token signer")
        self.bundle = tokens.write_bundle(Path(workdir) / "token-signer.pem", signer.pem())
        super().__init__(signer, {username: tokens.User(password, {"**": ["pull", "push"]})}, anonymous={"**": ["pull"]})

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.requests.append(TokenRequest(parse_qs(urlparse(path).query).get("scope", [""])[0], authorization))
        return super().answer(path, authorization)

    def registry_auth(self) -> dict[str, Any]:
        """The ``auth`` section of a registry:2 config that trusts this server's tokens."""
        return {"token": {"realm": self.realm, "service": tokens.SERVICE, "issuer": tokens.ISSUER, "rootcertbundle": str(self.bundle)}}


class _Threaded(http.server.ThreadingHTTPServer):
    daemon_threads = True


@dataclass
class Seen:
    method: str
    path: str
    status: int
    body_bytes: int


@dataclass
class CountingProxy:
    """A reverse proxy on loopback in front of `target` (``127.0.0.1:PORT``)."""

    target: str
    mode: str = "pass"
    storage_root: Path | None = None
    seen: list[Seen] = field(default_factory=list)
    storage_authorization: list[str | None] = field(default_factory=list)
    redirect_to: str | None = None
    realm: str | None = None
    bind: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.port = free_port()
        self.host = f"{self.bind}:{self.port}"
        self.url = f"http://{self.host}"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                path = urlparse(self.path).path
                if proxy.mode == "redirect" and "/blobs/sha256:" in path and self.command == "GET":
                    self.send_response(307)
                    self.send_header("Location", f"{proxy.redirect_to or proxy.url}/_storage/{path.rpartition(':')[2]}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    proxy.seen.append(Seen(self.command, path, 307, 0))
                    return
                if path.startswith("/_storage/"):
                    self._storage(path.rpartition("/")[2])
                    return
                if proxy.mode == "down":  # a remote that accepts and then drops every connection
                    proxy.seen.append(Seen(self.command, self.path, 0, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if proxy.mode == "429":
                    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
                    self.send_response(429)
                    self.send_header("Retry-After", RETRY_AFTER)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    proxy.seen.append(Seen(self.command, self.path, 429, 0))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(proxy.target, timeout=60)
                headers = {key: value for key, value in self.headers.items() if key.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                self.send_response(response.status)
                self.send_header("ratelimit-remaining", f"{RATELIMIT_REMAINING};w=21600")
                for key, value in response.getheaders():
                    if key.lower() == "www-authenticate" and proxy.realm:
                        value = re.sub(r'realm="[^"]*"', f'realm="{proxy.realm}"', value)
                    if key.lower() not in ("connection", "transfer-encoding"):
                        self.send_header(key, value)
                sent = 0
                if self.command == "HEAD":
                    self.end_headers()
                else:
                    data = response.read()
                    if proxy.mode == "corrupt" and "/blobs/" in self.path and data:
                        data = bytes([data[0] ^ 0xFF]) + data[1:]  # same length, wrong bytes
                    if response.getheader("Content-Length") is None:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    sent = len(data)
                upstream.close()
                proxy.seen.append(Seen(self.command, urlparse(self.path).path, response.status, sent))

            def _storage(self, hex_: str) -> None:
                """Blob storage behind a redirect (as S3 behind Docker Hub): serves the remote's files, ranges too."""
                proxy.storage_authorization.append(self.headers.get("Authorization"))
                assert proxy.storage_root is not None
                data = (proxy.storage_root / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data").read_bytes()
                start, end = 0, len(data)
                wanted = self.headers.get("Range", "").removeprefix("bytes=")
                if wanted:
                    first, _, last = wanted.partition("-")
                    start, end = int(first), min(len(data), int(last) + 1 if last else len(data))
                self.send_response(206 if wanted else 200)
                if wanted:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.send_header("Content-Length", str(end - start))
                self.end_headers()
                self.wfile.write(data[start:end])
                proxy.seen.append(Seen(self.command, f"/v2/_storage/blobs/sha256:{hex_}", 206 if wanted else 200, end - start))

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Threaded((self.bind, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def blob_bytes(self, digest: str) -> int:
        """Body bytes of successful GETs of blob `digest` the remote sent through this proxy."""
        return sum(s.body_bytes for s in self.seen if s.method == "GET" and s.path.endswith(f"/blobs/{digest}") and s.status in (200, 206))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
