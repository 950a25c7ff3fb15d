"""A small Docker token server for tests: a test CA, signing keys chained to it, and JWTs as registry:2 expects.

`TestCA` makes an EC P-256 CA and certificates with `cryptography`; `Signer` holds a signing key and mints tokens
with PyJWT in one of the key forms registry:2 understands (``x5c`` chain, libtrust ``kid``, RFC 7638 thumbprint
``kid``, a ``kid`` from a JWKS). `TokenServer` serves the Docker token spec on loopback:
``GET /token?service=S&scope=repository:NAME:pull,push`` with optional Basic credentials of test users, answering
``{"token": ..., "access_token": ..., "expires_in": ...}`` with the intersection of what was asked and the user's
rights (anonymous callers get the anonymous rights).
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
from werkzeug.datastructures import WWWAuthenticate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirror.auth.keys import libtrust_key_id, public_jwk, thumbprint

ISSUER = "edge-test-token-issuer"
SERVICE = "edge-test-registry"
LIFETIME = 300


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: Any, issuer_name: str, issuer_key: Any, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    if subject != issuer_name:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


class TestCA:
    """A self-signed EC CA; `leaf` issues signing certificates under it."""

    __test__ = False

    def __init__(self, name: str = "edge-test-ca") -> None:
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = _certificate(name, self.key, name, self.key, ca=True)

    def leaf(self, subject: str = "token-signer") -> "Signer":
        key = ec.generate_private_key(ec.SECP256R1())
        return Signer(key, _certificate(subject, key, self.name, self.key, ca=False))

    def pem(self) -> bytes:
        return _pem(self.certificate)

    def server_files(self, directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
        """A TLS server certificate for `ip` under this CA: (certfile, keyfile) written to `directory`."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(ip)).issuer_name(_name(self.name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        certfile, keyfile = directory / "server.pem", directory / "server.key"
        certfile.write_bytes(_pem(certificate))
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return certfile, keyfile


def self_signed(subject: str = "direct-signer") -> "Signer":
    """A signer whose own certificate goes into the bundle (what a ``kid`` form refers to)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return Signer(key, _certificate(subject, key, subject, key, ca=False))


@dataclass
class Signer:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def pem(self) -> bytes:
        return _pem(self.certificate)

    def header(self, form: str) -> dict[str, Any]:
        """JOSE header for a key form: x5c, libtrust, thumbprint, jwks (kid "jwks-key-1"), jwk (embedded key)."""
        public = self.key.public_key()
        if form == "x5c":
            return {"x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()]}
        if form == "libtrust":
            return {"kid": libtrust_key_id(public)}
        if form == "thumbprint":
            return {"kid": thumbprint(public)}
        if form == "jwks":
            return {"kid": "jwks-key-1"}
        if form == "jwk":
            return {"jwk": public_jwk(public)}
        raise ValueError(form)

    def jwks(self) -> str:
        return json.dumps({"keys": [{**public_jwk(self.key.public_key()), "kid": "jwks-key-1", "use": "sig"}]})

    def mint(
        self,
        access: list[dict[str, Any]],
        subject: str = "alice",
        form: str = "x5c",
        issuer: str = ISSUER,
        audience: str = SERVICE,
        expires_in: float = LIFETIME,
        not_before: float | None = None,
        algorithm: str = "ES256",
    ) -> str:
        now = time.time()
        claims = {
            "iss": issuer, "sub": subject, "aud": audience, "exp": int(now + expires_in),
            "nbf": int(not_before if not_before is not None else now - 1), "iat": int(now),
            "jti": uuid.uuid4().hex, "access": access,
        }
        return jwt.encode(claims, self.key, algorithm=algorithm, headers=self.header(form))


def scope_access(scope: str) -> dict[str, Any]:
    """``repository:a/b:pull,push`` → ``{"type": "repository", "name": "a/b", "actions": ["pull", "push"]}``."""
    kind, rest = scope.split(":", 1)
    name, _, actions = rest.rpartition(":")
    return {"type": kind, "name": name, "actions": [action for action in actions.split(",") if action]}


Rights = dict[str, list[str]]  # repository glob (fnmatch) → actions; "registry:catalog" → ["*"]


@dataclass
class User:
    password: str
    rights: Rights = field(default_factory=dict)


class TokenServer:
    """The token endpoint at `realm`, run in a thread of the test process on loopback."""

    def __init__(self, signer: Signer, users: dict[str, User], anonymous: Rights | None = None, form: str = "x5c") -> None:
        self.signer, self.users, self.anonymous, self.form = signer, users, anonymous or {}, form
        self.issued = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, body = server.answer(self.path, self.headers.get("Authorization"))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="token"')
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _rights(self, authorization: str | None) -> tuple[str, Rights] | None:
        if not authorization:
            return "", self.anonymous
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        known = self.users.get(user)
        if known is None or known.password != password:
            return None
        return user, known.rights

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        query = parse_qs(urlparse(path).query)
        found = self._rights(authorization)
        if found is None:
            return 401, {"details": "bad credentials"}
        subject, rights = found
        access = []
        for scope in " ".join(query.get("scope", [])).split():
            asked = scope_access(scope)
            key = f"{asked['type']}:{asked['name']}" if asked["type"] != "repository" else asked["name"]
            allowed = {action for pattern, actions in rights.items() if fnmatch.fnmatchcase(key, pattern) for action in actions}
            granted = [action for action in asked["actions"] if action in allowed]
            if granted:
                access.append({**asked, "actions": granted})
        token = self.signer.mint(access, subject=subject, form=self.form, audience=query.get("service", [SERVICE])[0])
        self.issued += 1
        return 200, {"token": token, "access_token": token, "expires_in": LIFETIME, "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch_token(realm: str, service: str, scopes: list[str], credentials: tuple[str, str] | None) -> str:
    """What a client does with a challenge: GET realm?service=&scope= with Basic credentials."""
    import httpx

    params = [("service", service), *[("scope", scope) for scope in scopes]]
    response = httpx.get(realm, params=params, auth=credentials, timeout=10)
    response.raise_for_status()
    return response.json()["token"]


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="r",service="s",scope="a b"`` → ("bearer", {...}), read by werkzeug's parser (not the edge's
    own use of it: the tests read the edge's challenges as a client would)."""
    challenge = WWWAuthenticate.from_header(header)
    return (challenge.type, dict(challenge.parameters)) if challenge else ("", {})


def write_bundle(path: Path, *pems: bytes) -> Path:
    path.write_bytes(b"".join(pems))
    return path
