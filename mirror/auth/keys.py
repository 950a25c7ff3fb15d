"""The token signing keys an edge trusts, loaded the way registry:2 2.8 and 3.x load them.

- ``rootcertbundle``: PEM certificates. Each is a trust anchor for a token's ``x5c`` chain, and each one's public
  key is also trusted by ``kid``: its libtrust key ID (registry:2 2.8) and its RFC 7638 thumbprint (3.x).
- ``jwks``: a JSON Web Key Set (3.x); each key is trusted under its own ``kid``.

A key is identified here by its DER SubjectPublicKeyInfo, so a key embedded in a token header is trusted only
when it *is* one of these keys, never because the header says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mirror.config import ConfigError, TokenConfig

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

# RFC 7638 §3.2: the members a thumbprint covers, per key type.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def spki(key: PublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of `key`: the identity keys are compared by."""
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def libtrust_key_id(key: PublicKey) -> str:
    """registry:2 2.8's key ID: SHA-256 of the DER public key, first 240 bits, base32, 12 groups of 4 joined by ':'."""
    encoded = base64.b32encode(hashlib.sha256(spki(key)).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[index : index + 4] for index in range(0, len(encoded), 4))


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The public JWK members of `key` (PyJWT's encoder)."""
    if isinstance(key, rsa.RSAPublicKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)
    return jwt.algorithms.OKPAlgorithm.to_jwk(key, as_dict=True)


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url without padding (distribution 3.x ``GetRFC7638Thumbprint``)."""
    members = public_jwk(key)
    canonical = {name: members[name] for name in _THUMBPRINT_MEMBERS[members["kty"]]}
    digest = hashlib.sha256(json.dumps(canonical, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class TrustedKeys:
    roots: list[x509.Certificate] = field(default_factory=list)
    by_kid: dict[str, PublicKey] = field(default_factory=dict)
    by_spki: dict[bytes, PublicKey] = field(default_factory=dict)

    def add(self, kid: str, key: PublicKey) -> None:
        self.by_kid[kid] = key
        self.by_spki[spki(key)] = key


def load_trusted_keys(settings: TokenConfig) -> TrustedKeys:
    """Read ``rootcertbundle`` and ``jwks``; a file that cannot be read or parsed is a ConfigError naming its key."""
    trusted = TrustedKeys()
    if settings.rootcertbundle:
        try:
            trusted.roots = x509.load_pem_x509_certificates(Path(settings.rootcertbundle).read_bytes())
        except (OSError, ValueError) as error:
            raise ConfigError("auth.token.rootcertbundle", f"cannot load PEM certificates from {settings.rootcertbundle}: {error}") from None
        for certificate in trusted.roots:
            key = certificate.public_key()
            if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
                raise ConfigError("auth.token.rootcertbundle", f"unsupported key type in {certificate.subject.rfc4514_string()}")
            trusted.add(libtrust_key_id(key), key)
            trusted.add(thumbprint(key), key)
    if settings.jwks:
        try:
            key_set = jwt.PyJWKSet.from_json(Path(settings.jwks).read_text())
        except (OSError, ValueError, jwt.PyJWTError) as error:
            raise ConfigError("auth.token.jwks", f"cannot load a JSON Web Key Set from {settings.jwks}: {error}") from None
        for entry in key_set.keys:
            if not entry.key_id:
                raise ConfigError("auth.token.jwks", "every key in the set needs a kid")
            key = entry.key.public_key() if hasattr(entry.key, "public_key") else entry.key
            trusted.add(entry.key_id, key)
    if not trusted.by_kid:
        raise ConfigError("auth.token.rootcertbundle", "token auth requires at least one token signing key")
    return trusted
