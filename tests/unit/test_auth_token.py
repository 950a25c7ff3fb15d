"""Token verification as registry:2 does it: each refused token, and each key form accepted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mirror.api.failures import registry_error
from mirror.auth.keys import load_trusted_keys
from mirror.auth.token import InvalidToken, TokenVerifier
from mirror.config import TokenConfig
from mirror.domain import Problem
from tests.support.clock import FakeClock
from tests.support.tokens import ISSUER, SERVICE, TestCA, self_signed, write_bundle

PULL_APP = [{"type": "repository", "name": "team/app", "actions": ["pull"]}]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    work: Path = tmp_path_factory.mktemp("token-keys")
    ca = TestCA()
    chained = ca.leaf()
    direct = self_signed()
    jwks_signer = self_signed("jwks-signer")
    bundle = write_bundle(work / "roots.pem", ca.pem(), direct.pem())
    jwks = work / "jwks.json"
    jwks.write_text(jwks_signer.jwks())
    settings = TokenConfig(realm="http://x/token", service=SERVICE, issuer=ISSUER, rootcertbundle=str(bundle), jwks=str(jwks))
    verifier = TokenVerifier(settings, load_trusted_keys(settings))
    return {"verifier": verifier, "chained": chained, "direct": direct, "jwks": jwks_signer, "ca": ca}


def _refused(keys, token: str) -> None:
    with pytest.raises(InvalidToken):
        keys["verifier"].verify(token)


def test_x5c_chain_to_the_root_bundle_is_accepted(keys):
    claims = keys["verifier"].verify(keys["chained"].mint(PULL_APP, form="x5c"))
    assert ("repository", "team/app", "pull") in claims.grants
    assert claims.subject == "alice"


def test_libtrust_kid_of_a_bundle_key_is_accepted(keys):
    token = keys["direct"].mint(PULL_APP, form="libtrust")
    kid = jwt.get_unverified_header(token)["kid"]
    assert len(kid.split(":")) == 12 and all(len(group) == 4 for group in kid.split(":"))
    assert ("repository", "team/app", "pull") in keys["verifier"].verify(token).grants


def test_thumbprint_kid_of_a_bundle_key_is_accepted(keys):
    assert keys["verifier"].verify(keys["direct"].mint(PULL_APP, form="thumbprint")).grants


def test_jwks_kid_is_accepted(keys):
    assert keys["verifier"].verify(keys["jwks"].mint(PULL_APP, form="jwks")).grants


def test_header_jwk_equal_to_a_trusted_key_is_accepted(keys):
    assert keys["verifier"].verify(keys["direct"].mint(PULL_APP, form="jwk")).grants


def test_expired_token_is_refused(keys):
    _refused(keys, keys["chained"].mint(PULL_APP, expires_in=-61))


def test_token_expired_within_the_60s_leeway_is_still_accepted(keys):
    assert keys["verifier"].verify(keys["chained"].mint(PULL_APP, expires_in=-30)).grants


def test_not_yet_valid_token_is_refused(keys):
    _refused(keys, keys["chained"].mint(PULL_APP, not_before=time.time() + 120))


def test_wrong_issuer_is_refused(keys):
    _refused(keys, keys["chained"].mint(PULL_APP, issuer="someone-else"))


def test_wrong_audience_is_refused(keys):
    _refused(keys, keys["chained"].mint(PULL_APP, audience="another-registry"))


def test_untrusted_key_is_refused(keys):
    stranger = TestCA("stranger-ca").leaf()
    _refused(keys, stranger.mint(PULL_APP, form="x5c"))
    _refused(keys, self_signed("stranger").mint(PULL_APP, form="libtrust"))


def test_alg_none_is_refused(keys):
    valid = keys["chained"].mint(PULL_APP)
    header = dict(jwt.get_unverified_header(valid), alg="none")
    payload = valid.split(".")[1]
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    _refused(keys, f"{encoded}.{payload}.")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_hs256_signed_with_the_public_key_as_secret_is_refused(keys):
    # The classic key-confusion forgery (PyJWT itself refuses to make it, so it is built by hand here).
    for secret in (keys["direct"].pem(), keys["direct"].key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)):
        header = {"alg": "HS256", "typ": "JWT", **keys["direct"].header("libtrust")}
        payload = keys["direct"].mint(PULL_APP).split(".")[1]
        signing_input = f"{_b64(json.dumps(header).encode())}.{payload}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        _refused(keys, f"{signing_input}.{_b64(signature)}")


def test_header_jwk_that_is_not_trusted_is_refused(keys):
    stranger = self_signed("stranger")
    _refused(keys, stranger.mint(PULL_APP, form="jwk"))


def test_header_jwk_is_not_trusted_because_a_trusted_kid_rides_along(keys):
    stranger = self_signed("stranger")
    header = {**stranger.header("jwk"), "kid": jwt.get_unverified_header(keys["direct"].mint([], form="libtrust"))["kid"]}
    claims = jwt.decode(stranger.mint(PULL_APP), options={"verify_signature": False})
    _refused(keys, jwt.encode(claims, stranger.key, algorithm="ES256", headers=header))


def test_x5c_leaf_signed_by_an_untrusted_ca_with_a_trusted_kid_is_refused(keys):
    stranger = TestCA("stranger-ca").leaf()
    header = {**stranger.header("x5c"), "kid": jwt.get_unverified_header(keys["direct"].mint([], form="libtrust"))["kid"]}
    claims = jwt.decode(stranger.mint(PULL_APP), options={"verify_signature": False})
    _refused(keys, jwt.encode(claims, stranger.key, algorithm="ES256", headers=header))


def test_garbage_is_refused(keys):
    _refused(keys, "not.a.token")
    _refused(keys, "x" * 20000)


def test_verified_claims_are_cached_until_expiry(keys):
    verifier = keys["verifier"]
    token = keys["chained"].mint(PULL_APP)
    first = verifier.verify(token)
    assert verifier.verify(token) is first


def test_a_cached_token_is_refused_once_past_exp_plus_leeway(keys):
    clock = FakeClock()
    verifier = TokenVerifier(keys["verifier"].settings, keys["verifier"].trusted, clock=clock)
    token = keys["chained"].mint(PULL_APP, expires_in=-50)  # valid for about ten more seconds, leeway included
    verifier.verify(token)
    clock.advance(9)  # now about a second before exp plus leeway: still the cached answer
    verifier.verify(token)
    clock.advance(2)
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def _token_authorizer(keys, tmp_path: Path, **auth):
    from mirror.auth import Authorizer
    from mirror.config import AuthConfig

    bundle = write_bundle(tmp_path / "roots.pem", keys["ca"].pem())
    settings = TokenConfig(realm="http://token.example/token", service=SERVICE, issuer=ISSUER, rootcertbundle=str(bundle))
    return Authorizer(AuthConfig(method="token", token=settings, **auth))


def test_insufficient_scope_challenge_names_what_the_request_needs(keys, tmp_path):
    from mirror.auth import for_repository

    authorizer = _token_authorizer(keys, tmp_path, anonymous=())
    token = keys["chained"].mint(PULL_APP)
    with pytest.raises(Problem) as refused:
        asyncio.run(authorizer.authorize(f"Bearer {token}", for_repository("PUT", "team/app")))
    assert registry_error(refused.value).status == 401
    assert registry_error(refused.value).headers["WWW-Authenticate"] == (
        'Bearer realm="http://token.example/token",service="edge-test-registry",'
        'scope="repository:team/app:pull,push",error="insufficient_scope"'
    )


def test_anonymous_rights_add_to_a_tokens_rights(keys, tmp_path):
    from mirror.auth import for_repository

    authorizer = _token_authorizer(keys, tmp_path, anonymous=("pull",), anonymous_repositories=("public/**",))
    token = keys["chained"].mint(PULL_APP, subject="carol")
    assert asyncio.run(authorizer.authorize(f"Bearer {token}", for_repository("GET", "public/base"))) == "carol"
    assert asyncio.run(authorizer.authorize(None, for_repository("GET", "public/base"))) == ""
