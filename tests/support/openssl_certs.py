"""Token signing certificates made the way token-server guides make them: with the ``openssl`` command line.

`Issuer.root` runs ``openssl req -x509`` (version 3, basicConstraints CA:TRUE, no keyUsage) or, with
``version1=True``, ``openssl x509 -req -signkey`` without an extension file (a version-1 self-signed certificate).
`Issuer.issue` runs ``openssl x509 -req -CA`` with the given extension lines, or without ``-extfile`` at all
(a version-1 certificate). Keys are EC P-256, except a root made with ``rsa=True`` (RSA 2048, as the
guides make it). `mint` signs a JWT whose ``x5c`` header carries the given chain.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.tokens import ISSUER, SERVICE, LIFETIME


# The guides' root key is RSA 2048; every other key is EC P-256, which openssl makes in milliseconds.
RSA = ["-newkey", "rsa:2048"]
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr}")


@dataclass
class Issuer:
    """A certificate and its RSA key, both as files written by openssl."""

    name: str
    cert_path: Path
    key_path: Path

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def pem(self) -> bytes:
        return self.cert_path.read_bytes()

    def der_b64(self) -> str:
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()

    @classmethod
    def root(
        cls, directory: Path, name: str, extensions: list[str] | None = None, version1: bool = False, rsa: bool = False
    ) -> "Issuer":
        """A self-signed certificate: ``openssl req -x509`` (plus ``-addext`` lines), or a version-1 one."""
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        if version1:
            csr = directory / f"{name}.csr"
            _openssl("req", "-new", *(RSA if rsa else EC), "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
            _openssl("x509", "-req", "-in", str(csr), "-signkey", str(key), "-days", "2", "-out", str(cert))
        else:
            added = [argument for line in extensions or [] for argument in ("-addext", line)]
            _openssl("req", "-x509", *(RSA if rsa else EC), "-nodes", "-subj", f"/CN={name}", "-days", "2",
                     "-keyout", str(key), "-out", str(cert), *added)
        return cls(name, cert, key)

    def issue(self, name: str, extensions: list[str] | None = None, days: int = 1) -> "Issuer":
        """A certificate for `name` signed by this one: ``openssl x509 -req -CA``; no `extensions` → version 1."""
        directory = self.cert_path.parent
        cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
        _openssl("req", "-new", *EC, "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        command = ["x509", "-req", "-in", str(csr), "-CA", str(self.cert_path), "-CAkey", str(self.key_path),
                   "-set_serial", str(uuid.uuid4().int >> 64), "-days", str(days), "-out", str(cert)]
        if extensions is not None:
            extfile = directory / f"{name}.ext"
            extfile.write_text("\n".join(extensions) + "\n")
            command += ["-extfile", str(extfile)]
        _openssl(*command)
        return Issuer(name, cert, key)

    def mint(self, access: list[dict[str, Any]], chain: list["Issuer"]) -> str:
        """A token signed with this key whose ``x5c`` is this certificate followed by `chain`."""
        now = time.time()
        claims = {"iss": ISSUER, "sub": "alice", "aud": SERVICE, "exp": int(now + LIFETIME), "nbf": int(now - 1),
                  "iat": int(now), "jti": uuid.uuid4().hex, "access": access}
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        x5c = [self.der_b64(), *(issuer.der_b64() for issuer in chain)]
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"x5c": x5c})

