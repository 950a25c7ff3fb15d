"""Token x5c chains made with the openssl CLI, as token-server guides make them: the edge accepts exactly the chains
a real registry:2 trusting the same rootcertbundle accepts (Go's crypto/x509), and refuses the rest.

One bundle holds every root the cases need, so one registry:2 and one edge answer them all; a second pair trusts a
bundle that is nothing but a self-signed signer. Each case is a GET of /v2/_catalog with a token whose x5c is the
signer's certificate (plus any intermediates): registry:2's status is asserted as well, so the table below also
records what registry:2 2.8 does.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.edge import EdgeMirror, filesystem_storage
from tests.support.openssl_certs import Issuer
from tests.support.registry2 import Registry2
from tests.support.tokens import ISSUER, SERVICE, write_bundle

CATALOG = [{"type": "registry", "name": "catalog", "actions": ["*"]}]
SIGNER = ["subjectKeyIdentifier=hash", "basicConstraints=critical,CA:FALSE"]  # no keyUsage, as the guides write it
CA = ["subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid", "basicConstraints=critical,CA:TRUE"]

# case → (registry:2's answer, how the signer and its x5c intermediates are made from the bundle's roots)
CASES = {
    "signer-without-keyusage-under-a-guide-root": (200, lambda r: (r["guide"].issue("s1", SIGNER), [])),
    "version-1-signer-under-a-guide-root": (200, lambda r: (r["guide"].issue("s2"), [])),
    "self-signed-signer-in-the-bundle": (200, lambda r: (r["self-signed"], [])),
    "self-signed-ca-false-signer-in-the-bundle": (200, lambda r: (r["self-signed-leaf"], [])),
    "self-signed-version-1-signer-in-the-bundle": (200, lambda r: (r["self-signed-v1"], [])),
    "signer-under-a-version-1-root": (200, lambda r: (r["v1"].issue("s3", SIGNER), [])),
    "version-1-signer-under-a-version-1-root": (200, lambda r: (r["v1"].issue("s4"), [])),
    "version-1-signer-via-an-intermediate": (200, lambda r: (r["intermediate"].issue("s5"), [r["intermediate"]])),
    "signer-via-an-intermediate": (200, lambda r: (r["intermediate"].issue("s6", SIGNER), [r["intermediate"]])),
    "signer-under-pathlen-0-root": (200, lambda r: (r["pathlen0"].issue("s7", SIGNER), [])),
    # refused by both
    "expired-signer": (401, lambda r: (r["guide"].issue("s8", SIGNER, days=-1), [])),
    "signer-not-issued-by-the-bundle": (401, lambda r: (r["stranger"].issue("s9", SIGNER), [])),
    "version-1-signer-named-like-a-bundle-root": (401, lambda r: (r["impostor"], [])),
    "ca-false-leaf-used-as-issuer": (401, lambda r: (r["leaf"].issue("s10", SIGNER), [r["leaf"]])),
    "signer-via-a-version-1-intermediate": (
        401, lambda r: (r["v1-intermediate"].issue("s11", SIGNER), [r["v1-intermediate"]])
    ),
    "root-keyusage-without-keycertsign": (401, lambda r: (r["sign-only"].issue("s12", SIGNER), [])),
    "root-with-ca-false": (401, lambda r: (r["ca-false"].issue("s13", SIGNER), [])),
    "signer-with-an-unknown-critical-extension": (
        401, lambda r: (r["guide"].issue("s15", [*SIGNER, "1.3.6.1.4.1.55555.1=critical,ASN1:UTF8String:x"]), [])
    ),
    "intermediate-past-a-pathlen-0-root": (
        401, lambda r: (r["pathlen0-intermediate"].issue("s14", SIGNER), [r["pathlen0-intermediate"]])
    ),
}


def _roots(directory: Path) -> tuple[dict[str, Issuer], list[Issuer]]:
    """The bundle's certificates (the first list) and the CAs under them the cases issue from."""
    roots = {
        "guide": Issuer.root(directory, "token-root", rsa=True),  # openssl req -x509 -newkey rsa:2048: no keyUsage
        "v1": Issuer.root(directory, "v1-root", version1=True),
        "sign-only": Issuer.root(directory, "sign-only-root", ["keyUsage=critical,digitalSignature"]),
        "pathlen0": Issuer.root(directory, "pathlen0-root", ["basicConstraints=critical,CA:TRUE,pathlen:0"]),
        "ca-false": Issuer.root(directory, "ca-false-root", ["basicConstraints=critical,CA:FALSE"]),
        "self-signed": Issuer.root(directory, "self-signed-signer"),
        "self-signed-leaf": Issuer.root(directory, "self-signed-leaf", ["basicConstraints=critical,CA:FALSE"]),
        "self-signed-v1": Issuer.root(directory, "self-signed-v1", version1=True),
    }
    bundle = list(roots.values())
    roots["stranger"] = Issuer.root(directory, "stranger-root")
    (directory / "impostor").mkdir()
    roots["impostor"] = Issuer.root(directory / "impostor", "token-root", version1=True)  # a bundle root's name
    roots["intermediate"] = roots["guide"].issue("intermediate", CA)
    roots["v1-intermediate"] = roots["guide"].issue("v1-intermediate")
    roots["leaf"] = roots["guide"].issue("ca-false-leaf", SIGNER)
    roots["pathlen0-intermediate"] = roots["pathlen0"].issue("pathlen0-intermediate", CA)
    return roots, bundle


class Pair:
    """A registry:2 and an edge trusting the same rootcertbundle."""

    def __init__(self, work: Path, bundle: Path) -> None:
        settings = {
            "realm": "http://127.0.0.1:9/token", "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)
        }
        for name in ("registry-data", "edge-data"):
            (work / name).mkdir()
        self.registry = Registry2.filesystem(
            work / "registry-data", workdir=work / "registry", auth={"token": settings}
        )
        self.edge = EdgeMirror(
            work / "edge", filesystem_storage(work / "edge-data"), auth={"method": "token"}, **{"auth.token": settings}
        )
        try:
            self.edge.start()
        except BaseException:
            self.registry.stop()
            raise

    def statuses(self, token: str) -> tuple[int, int]:
        """(registry:2, edge) status of GET /v2/_catalog with `token`."""
        headers = {"Authorization": f"Bearer {token}"}
        return tuple(httpx.get(f"{url}/v2/_catalog", headers=headers, timeout=30).status_code
                     for url in (self.registry.url, self.edge.url))  # type: ignore[return-value]

    def stop(self) -> None:
        self.edge.stop()
        self.registry.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    work = tmp_path_factory.mktemp("x5c-chains")
    (work / "certs").mkdir()
    roots, bundle = _roots(work / "certs")
    pair = Pair(work, write_bundle(work / "bundle.pem", *(root.pem() for root in bundle)))
    try:
        yield pair, roots
    finally:
        pair.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_edge_answers_an_openssl_made_chain_as_registry2_does(shared, case):
    pair, roots = shared
    expected, make = CASES[case]
    signer, intermediates = make(roots)
    assert pair.statuses(signer.mint(CATALOG, intermediates)) == (expected, expected)


def test_a_self_signed_signer_that_is_the_whole_bundle_is_accepted_as_by_registry2(tmp_path):
    for name in ("certs", "stranger"):
        (tmp_path / name).mkdir()
    signer = Issuer.root(tmp_path / "certs", "token-signer", rsa=True)
    stranger = Issuer.root(tmp_path / "stranger", "token-signer")  # the same name, another key
    pair = Pair(tmp_path, write_bundle(tmp_path / "bundle.pem", signer.pem()))
    try:
        assert pair.statuses(signer.mint(CATALOG, [])) == (200, 200)
        assert pair.statuses(stranger.mint(CATALOG, [])) == (401, 401)
    finally:
        pair.stop()
