"""Bearer JWT verification as registry:2 does it, with verified claims cached until they expire.

Order of checks (registry:2 ``token.Verify``): a signing algorithm from the allowlist; the signing key from the
header (an ``x5c`` chain to a certificate of ``rootcertbundle``, checked as Go's crypto/x509 checks it in
`mirror.auth.x5c`; else a ``jwk`` that equals a trusted key; else a trusted ``kid``); the signature; ``iss``
equal to the issuer; ``aud`` containing the service; ``exp``/``nbf`` with 60 s of leeway; then the ``access``
claims. Any failure is one `InvalidToken`: the client gets ``error="invalid_token"`` and never learns which check
failed (the log does).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import jwt
from cachetools import TLRUCache
from cryptography import x509

from mirror.auth.keys import PublicKey, TrustedKeys, spki
from mirror.auth.x5c import ChainVerifier, UntrustedChain
from mirror.config import TokenConfig

log = logging.getLogger(__name__)

LEEWAY_SECONDS = 60  # registry:2's token.Leeway
MAX_TOKEN_BYTES = 16 * 1024
CACHED_TOKENS = 8192
# Asymmetric algorithms only: no HS* (a public key must never become an HMAC secret) and no "none".
ALLOWED_ALGORITHMS = frozenset(
    ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"]
)


class InvalidToken(Exception):
    """The token is malformed, untrusted, expired or not for this service; the message says why (for logs)."""


Grant = tuple[str, str, str]  # (type, name, action)


@dataclass(frozen=True)
class Claims:
    subject: str
    expires_at: float
    grants: frozenset[Grant]


def _certificate(encoded: Any) -> x509.Certificate:
    if not isinstance(encoded, str):
        raise InvalidToken("x5c entries must be strings")
    try:
        return x509.load_der_x509_certificate(base64.b64decode(encoded, validate=True))
    except ValueError as error:
        raise InvalidToken(f"x5c entry is not a DER certificate: {error}") from None


def _grants(payload: dict[str, Any]) -> frozenset[Grant]:
    access = payload.get("access") or []
    if not isinstance(access, list):
        raise InvalidToken("access claim is not a list")
    grants: set[Grant] = set()
    for entry in access:
        if not isinstance(entry, dict):
            raise InvalidToken("access entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions") or []
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise InvalidToken("access entry needs string type and name and a list of actions")
        if entry.get("class"):
            continue  # registry:2 keys resources by class too; requests never carry one, so these never match
        grants.update((kind, name, action) for action in actions if isinstance(action, str))
    return frozenset(grants)


class TokenVerifier:
    """Verifies tokens for one ``[auth.token]`` configuration; thread-safe enough for one event loop."""

    def __init__(self, settings: TokenConfig, trusted: TrustedKeys, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.trusted = trusted
        self._clock = clock  # wall time, as exp is; tests pass a fake one
        self._chains = ChainVerifier(trusted.roots) if trusted.roots else None
        self._cache: TLRUCache[bytes, Claims] = TLRUCache(
            maxsize=CACHED_TOKENS, ttu=lambda _key, claims, _now: claims.expires_at + LEEWAY_SECONDS, timer=clock
        )

    def verify(self, raw: str) -> Claims:
        """The token's claims if registry:2 would accept it, else `InvalidToken`."""
        if len(raw) > MAX_TOKEN_BYTES:
            raise InvalidToken("token is too long")
        key = hashlib.sha256(raw.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        claims = self._verify(raw)
        if claims.expires_at + LEEWAY_SECONDS <= self._clock():  # PyJWT checked exp on its own clock; this is ours
            raise InvalidToken("token expired")
        self._cache[key] = claims
        return claims

    def _verify(self, raw: str) -> Claims:
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidToken(f"signing algorithm {algorithm!r} is not accepted")
        signing_key = self._signing_key(header)
        try:
            payload = jwt.decode(
                raw,
                signing_key,
                algorithms=[algorithm],
                audience=self.settings.service,
                issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"], "verify_iat": False},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(f"token rejected: {error}") from None
        subject = payload.get("sub")
        return Claims(
            subject=subject if isinstance(subject, str) else "",
            expires_at=float(payload["exp"]),
            grants=_grants(payload),
        )

    def _signing_key(self, header: dict[str, Any]) -> PublicKey:
        """The key registry:2 would check the signature with: x5c first, then jwk, then kid."""
        if "x5c" in header:
            return self._chain_key(header["x5c"])
        if "jwk" in header:
            try:
                embedded = jwt.PyJWK(header["jwk"]).key
            except (jwt.PyJWTError, ValueError, TypeError, KeyError) as error:
                raise InvalidToken(f"header jwk is not a key: {error}") from None
            public = embedded.public_key() if hasattr(embedded, "public_key") else embedded
            trusted = self.trusted.by_spki.get(spki(public))
            if trusted is None:
                raise InvalidToken("header jwk is not one of the trusted keys")
            return trusted
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self.trusted.by_kid:
            return self.trusted.by_kid[kid]
        raise InvalidToken(f"token signed by an untrusted or unnamed key (kid {kid!r})")

    def _chain_key(self, chain: Any) -> PublicKey:
        if self._chains is None:
            raise InvalidToken("x5c chain but no rootcertbundle is configured")
        if not isinstance(chain, list) or not chain or len(chain) > 8:
            raise InvalidToken("x5c must be a list of 1 to 8 certificates")
        certificates = [_certificate(entry) for entry in chain]
        try:
            self._chains.verify(certificates[0], certificates[1:])
        except UntrustedChain as error:
            raise InvalidToken(f"x5c chain does not lead to a trusted root: {error}") from None
        key = certificates[0].public_key()
        if not isinstance(key, PublicKey):  # DSA, X25519, X448: no token algorithm the edge accepts signs with them
            raise InvalidToken(f"x5c leaf has a {type(key).__name__}, which signs no accepted algorithm")
        return key
