"""A token's ``x5c`` chain checked as registry:2 checks it: Go's ``crypto/x509`` ``Certificate.Verify`` with
``ExtKeyUsageAny`` against the ``rootcertbundle`` (distribution 2.8 ``parseAndVerifyCertChain``; Go 1.19 in
Debian 12's registry:2 2.8.2). Go's rules, for leaf → ``x5c[1:]`` as intermediates → a bundle certificate:

- every certificate is within its validity period *now* (no leeway) and has no critical extension Go doesn't know;
- a leaf that is itself a bundle certificate is trusted as it is;
- each issuer (intermediate or root) signed its child and may sign: a version-3 issuer needs basicConstraints
  CA:TRUE, a keyUsage (when present) must include keyCertSign, a version-1 issuer (no extensions) may sign;
- an intermediate needs basicConstraints CA:TRUE (a version-1 intermediate is refused); a pathLen bounds the
  intermediates below it;
- nothing else: no keyUsage required on CAs, no extendedKeyUsage, subject names or key usages of the leaf.

cryptography's verifier does exactly this for version-3 certificates with the extension policies below (the Web
PKI's CA profile, which requires keyUsage, is what refused the roots token-server guides make). It refuses every
version-1 certificate by construction (CA/B 7.1.1 in its `permits_basic`, not a policy setting), while Go accepts
one as the signer (``openssl x509 -req`` without ``-extfile``) and as a root (``-signkey``). A chain the verifier
refuses is therefore checked once more by `go_chain` when a version-1 certificate takes part: the same rules
written out, with cryptography checking each signature. Known remaining differences, all refusing more than Go:
the verifier's Web PKI profile for version-3 chains (RSA keys under 2048 bits, Ed25519 or P-224 issuers, odd
RSA-PSS parameters, negative or over-long serial numbers, GeneralizedTime dates before 2050); `go_chain` refuses
any chain through a CA with nameConstraints.
"""

from __future__ import annotations

import datetime
from typing import Callable, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import verification
from cryptography.x509.oid import ExtensionOID

# The extensions Go 1.19's parser handles; a critical extension outside these makes a certificate unusable.
GO_KNOWN_EXTENSIONS = frozenset(
    [
        ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.KEY_USAGE, ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.NAME_CONSTRAINTS, ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    ]
)
MAX_SIGNATURE_CHECKS = 100  # Go's maxChainSignatureChecks


class UntrustedChain(Exception):
    """The chain does not lead to a bundle certificate as registry:2 requires; the message says why."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _must_be_ca(_policy: object, _certificate: x509.Certificate, constraints: x509.BasicConstraints) -> None:
    if not constraints.ca:
        raise ValueError("an issuer needs basicConstraints CA:TRUE")


def _may_sign_certificates(_policy: object, _certificate: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("an issuer's keyUsage must include keyCertSign")


def go_ca_policy() -> verification.ExtensionPolicy:
    """Go's rules for an issuer: basicConstraints CA:TRUE (critical or not), keyUsage optional, else anything."""
    return (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, _must_be_ca)
        .may_be_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _may_sign_certificates)
    )


_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


def _extension(certificate: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _usable(certificate: x509.Certificate, now: datetime.datetime) -> bool:
    """Go's checks on every certificate of a chain: the validity period and no unknown critical extension."""
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return False
    return all(not extension.critical or extension.oid in GO_KNOWN_EXTENSIONS for extension in certificate.extensions)


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Go's CheckSignatureFrom: the issuer may sign certificates, and its key made the child's signature."""
    constraints = _extension(issuer, x509.BasicConstraints)
    usage = _extension(issuer, x509.KeyUsage)
    if issuer.version is x509.Version.v3 and constraints is None:
        return False
    if constraints is not None and not constraints.ca:
        return False
    if usage is not None and not usage.key_cert_sign:
        return False
    try:
        if isinstance(child.signature_hash_algorithm, (hashes.SHA1, hashes.MD5)):
            return False  # Go 1.18+ refuses SHA-1 and MD5 signatures
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def go_chain(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: list[x509.Certificate], now: datetime.datetime
) -> bool:
    """Whether Go's Certificate.Verify (ExtKeyUsageAny) finds a chain from `leaf` to one of `roots`."""
    if not _usable(leaf, now):
        return False
    if leaf in roots:
        return True
    budget = [MAX_SIGNATURE_CHECKS]
    return _extend([leaf], intermediates, roots, now, budget)


def _extend(
    chain: list[x509.Certificate], intermediates: list[x509.Certificate], roots: list[x509.Certificate],
    now: datetime.datetime, budget: list[int],
) -> bool:
    child = chain[-1]
    candidates = [(root, True) for root in roots] + [(intermediate, False) for intermediate in intermediates]
    for parent, is_root in candidates:
        if parent.subject != child.issuer or parent in chain:
            continue
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if not (_signed_by(child, parent) and _usable(parent, now)):
            continue
        if _extension(parent, x509.NameConstraints) is not None:
            continue  # not evaluated here: refused, never accepted on a guess
        constraints = _extension(parent, x509.BasicConstraints)
        if not is_root and (constraints is None or not constraints.ca):
            continue
        limit = constraints.path_length if constraints is not None else None
        if limit is not None and len(chain) - 1 > limit:
            continue
        if is_root or _extend([*chain, parent], intermediates, roots, now, budget):
            return True
    return False


class ChainVerifier:
    """Checks x5c chains against the bundle's certificates as registry:2 does; `clock` gives the time to check at."""

    def __init__(self, roots: list[x509.Certificate], clock: Callable[[], datetime.datetime] = _now) -> None:
        self.roots = roots
        self._store = verification.Store(roots)
        self._clock = clock
        self._version1_roots = any(root.version is x509.Version.v1 for root in roots)
        self._ca_policy, self._ee_policy = go_ca_policy(), verification.ExtensionPolicy.permit_all()

    def verify(self, leaf: x509.Certificate, intermediates: list[x509.Certificate]) -> None:
        """Return if the chain is trusted, else raise `UntrustedChain`."""
        now = self._clock()
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(now)  # now, not when the edge started: a verifier keeps the time it was built at
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
            return
        except verification.VerificationError as error:
            refused = str(error)
        version1 = self._version1_roots or any(c.version is x509.Version.v1 for c in [leaf, *intermediates])
        if version1 and go_chain(leaf, intermediates, self.roots, now):
            return
        raise UntrustedChain(refused)
