"""A running edge accepts each key form registry:2 2.8 or 3.x accepts, and refuses a stranger's key in each."""

from __future__ import annotations

import httpx
import pytest

from tests.support.edge import EdgeMirror, filesystem_storage
from tests.support.tokens import ISSUER, SERVICE, TestCA, self_signed, write_bundle

CATALOG = [{"type": "registry", "name": "catalog", "actions": ["*"]}]


@pytest.fixture(scope="module")
def signers(tmp_path_factory):
    work = tmp_path_factory.mktemp("key-forms")
    ca = TestCA()
    signers = {"x5c": ca.leaf(), "libtrust": self_signed(), "thumbprint": self_signed("thumb"), "jwks": self_signed("jwks")}
    bundle = write_bundle(work / "roots.pem", ca.pem(), signers["libtrust"].pem(), signers["thumbprint"].pem())
    (work / "jwks.json").write_text(signers["jwks"].jwks())
    (work / "data").mkdir()
    settings = {"realm": "http://127.0.0.1:9/token", "service": SERVICE, "issuer": ISSUER,
                "rootcertbundle": str(bundle), "jwks": str(work / "jwks.json")}
    with EdgeMirror(work / "edge", filesystem_storage(work / "data"), auth={"method": "token"}, **{"auth.token": settings}) as edge:
        yield edge, signers


@pytest.mark.parametrize("form", ["x5c", "libtrust", "thumbprint", "jwks"])
def test_edge_accepts_the_key_form(signers, form):
    edge, by_form = signers
    token = by_form[form].mint(CATALOG, form=form)
    response = httpx.get(f"{edge.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"repositories": []}


@pytest.mark.parametrize("form", ["x5c", "libtrust", "thumbprint", "jwk"])
def test_edge_refuses_a_strangers_key_in_the_same_form(signers, form):
    edge, _ = signers
    stranger = TestCA("stranger").leaf() if form == "x5c" else self_signed("stranger")
    token = stranger.mint(CATALOG, form=form)
    response = httpx.get(f"{edge.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].endswith('error="invalid_token"')
