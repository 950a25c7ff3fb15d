"""A remote registry for the remote-tier tests: a real registry:2 with token auth, its token server, and a
counting proxy in front of it that can also answer 429 or go away.

* `TokenServer` issues registry:2 bearer tokens (ES256 JWTs whose ``x5c`` header carries a self-signed certificate
  that registry:2 trusts through ``auth.token.rootcertbundle``). Anonymous callers get ``pull``; callers with the
  configured Basic credentials get ``pull,push``. Every request is recorded (path, whether credentials came).
* `CountingProxy` forwards to the registry (adding Docker Hub's ``ratelimit-remaining`` header) and records every request (method, path, status, body bytes). Set
  `mode` to ``"429"`` to answer every request 429 with ``Retry-After: 7``, or ``"down"`` to drop every connection unanswered, or
  ``"redirect"`` to send blob GETs to "blob storage" at ``/_storage/<hex>`` (the remote's files under
  `storage_root`), recording the Authorization header each storage request carried.

Both run as threads in the test process (plain stdlib HTTP servers on loopback).
"""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.ports import free_port

SERVICE = "remote-registry"
ISSUER = "remote-token-issuer"
RETRY_AFTER = "7"
RATELIMIT_REMAINING = 97  # announced on every forwarded answer, as Docker Hub does


@dataclass
class TokenRequest:
    scope: str
    basic: str | None


class _Threaded(http.server.ThreadingHTTPServer):
    daemon_threads = True


class TokenServer:
    def __init__(self, workdir: Path, username: str = "puller", password: str = "secret-pass") -> None:
        self.username, self.password = username, password
        self.requests: list[TokenRequest] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = Path(workdir) / "token-signer.pem"
        self.cert_path.parent.mkdir(parents=True, exist_ok=True)
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                query = parse_qs(urlparse(self.path).query)
                scope = query.get("scope", [""])[0]
                basic = self.headers.get("Authorization")
                server.requests.append(TokenRequest(scope, basic))
                expected = "Basic " + base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
                if basic is not None and basic != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = orjson.dumps({"token": server.issue(scope, push=basic is not None), "expires_in": 300})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Threaded(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def issue(self, scope: str, push: bool) -> str:
        access = []
        parts = scope.split(":")
        if len(parts) == 3 and parts[0] == "repository":
            allowed = ["pull", "push"] if push else ["pull"]
            access.append({"type": "repository", "name": parts[1], "actions": [a for a in parts[2].split(",") if a in allowed]})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "tester", "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        x5c = [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": x5c})

    def registry_auth(self) -> dict[str, Any]:
        """The ``auth`` section of a registry:2 config that trusts this server's tokens."""
        return {"token": {"realm": self.realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(self.cert_path)}}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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

    def __post_init__(self) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                path = urlparse(self.path).path
                if proxy.mode == "redirect" and "/blobs/sha256:" in path and self.command == "GET":
                    self.send_response(307)
                    self.send_header("Location", f"{proxy.url}/_storage/{path.rpartition(':')[2]}")
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
                    if key.lower() not in ("connection", "transfer-encoding"):
                        self.send_header(key, value)
                sent = 0
                if self.command == "HEAD":
                    self.end_headers()
                else:
                    data = response.read()
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

        self._server = _Threaded(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def blob_bytes(self, digest: str) -> int:
        """Body bytes of successful GETs of blob `digest` the remote sent through this proxy."""
        return sum(s.body_bytes for s in self.seen if s.method == "GET" and s.path.endswith(f"/blobs/{digest}") and s.status in (200, 206))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
