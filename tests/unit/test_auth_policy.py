"""The access decision: action map, anonymous rules, challenges, htpasswd checks, config of [auth]."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import bcrypt
import pytest

from mirror import errors
from mirror.api.failures import registry_error
from mirror.auth import CATALOG, Authorizer, for_repository
from mirror.auth.access import Access
from mirror.auth.policy import compile_glob
from mirror.config import AuthConfig, ConfigError, HtpasswdConfig, load
from mirror.domain import Problem


def _decide(authorizer: Authorizer, items, authorization: str | None = None):
    return asyncio.run(authorizer.authorize(authorization, items))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_action_map_is_registry2s():
    assert [a.action for a in for_repository("GET", "a")] == ["pull"]
    assert [a.action for a in for_repository("HEAD", "a")] == ["pull"]
    for method in ("POST", "PUT", "PATCH"):
        assert [a.action for a in for_repository(method, "a")] == ["pull", "push"]
    assert [a.action for a in for_repository("DELETE", "a")] == ["delete"]
    assert for_repository("POST", "a", mount_from="b")[-1] == Access("repository", "b", "pull")


def test_globs_match_components():
    assert compile_glob("team/*").fullmatch("team/app")
    assert not compile_glob("team/*").fullmatch("team/a/b")
    assert compile_glob("team/**").fullmatch("team/a/b")
    assert compile_glob("**").fullmatch("any/thing/at/all")
    assert not compile_glob("team.x/*").fullmatch("teamyx/app")


def test_default_config_allows_anonymous_pull_and_refuses_push_delete_and_mount():
    authorizer = Authorizer(load(None, environ={}).auth)
    assert _decide(authorizer, for_repository("GET", "team/app")) == ""
    for items in (for_repository("POST", "team/app"), for_repository("DELETE", "team/app"),
                  for_repository("POST", "team/app", mount_from="other")):
        with pytest.raises(Problem) as refused:
            _decide(authorizer, items)
        assert registry_error(refused.value).code is errors.DENIED
        assert "anonymous" in registry_error(refused.value).message


def test_anonymous_push_can_be_granted_for_some_repositories_only():
    authorizer = Authorizer(AuthConfig(anonymous=("pull", "push"), anonymous_repositories=("ci/**",)))
    assert _decide(authorizer, for_repository("PUT", "ci/build/app")) == ""
    with pytest.raises(Problem):
        _decide(authorizer, for_repository("GET", "team/app"))


def test_catalog_is_anonymous_only_when_every_repository_is_pullable():
    assert _decide(Authorizer(AuthConfig()), CATALOG) == ""
    with pytest.raises(Problem):
        _decide(Authorizer(AuthConfig(anonymous_repositories=("public/*",))), CATALOG)


@pytest.fixture()
def htpasswd_file(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"node-secret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    path.write_text(f"# users\nnode:{hashed}\nplain:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    return path


def _htpasswd(path: Path) -> Authorizer:
    return Authorizer(AuthConfig(method="htpasswd", anonymous=(), htpasswd=HtpasswdConfig(realm="edge", path=str(path))))


def test_htpasswd_user_with_the_right_password_may_push(htpasswd_file):
    assert _decide(_htpasswd(htpasswd_file), for_repository("PUT", "a"), _basic("node", "node-secret")) == "node"


@pytest.mark.parametrize(("user", "password"), [("node", "wrong"), ("nobody", "node-secret"), ("plain", "password")])
def test_htpasswd_refuses_bad_credentials_and_non_bcrypt_entries_with_a_basic_challenge(htpasswd_file, user, password):
    with pytest.raises(Problem) as refused:
        _decide(_htpasswd(htpasswd_file), for_repository("GET", "a"), _basic(user, password))
    assert registry_error(refused.value).code is errors.UNAUTHORIZED
    assert registry_error(refused.value).headers["WWW-Authenticate"] == 'Basic realm="edge"'


def test_htpasswd_without_credentials_gets_the_challenge_even_on_v2(htpasswd_file):
    with pytest.raises(Problem) as refused:
        _decide(_htpasswd(htpasswd_file), ())
    assert registry_error(refused.value).status == 401


def test_htpasswd_takes_empty_basic_credentials_as_anonymous(htpasswd_file):
    """containers/image (podman, buildah, skopeo, CRI-O) answers a Basic challenge it has no credentials for with
    ``Authorization: Basic Og==`` (an empty user and password): that is an anonymous request, not a failed login.
    Found by tests/e2e/test_third_party_clients.py (podman pulls through an edge with anonymous pull)."""
    authorizer = Authorizer(AuthConfig(method="htpasswd", anonymous=("pull",),
                                       htpasswd=HtpasswdConfig(realm="edge", path=str(htpasswd_file))))
    assert _decide(authorizer, for_repository("GET", "a"), _basic("", "")) == ""
    with pytest.raises(Problem) as refused:
        _decide(authorizer, for_repository("PUT", "a"), _basic("", ""))
    answer = registry_error(refused.value)
    assert answer.status == 401 and answer.headers["WWW-Authenticate"] == 'Basic realm="edge"'


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"MIRROR_AUTH_METHOD": "ldap"}, "auth.method"),
        ({"MIRROR_AUTH_ANONYMOUS": "pull,write"}, "auth.anonymous"),
        ({"MIRROR_AUTH_METHOD": "htpasswd"}, "auth.htpasswd.path"),
        ({"MIRROR_AUTH_METHOD": "token"}, "auth.token.realm"),
        ({"MIRROR_AUTH_METHOD": "token", "MIRROR_AUTH_TOKEN_REALM": "r", "MIRROR_AUTH_TOKEN_SERVICE": "s",
          "MIRROR_AUTH_TOKEN_ISSUER": "i"}, "auth.token.rootcertbundle"),
        ({"MIRROR_HTTP_CERTFILE": "/c.pem"}, "http.keyfile"),
    ],
)
def test_bad_auth_settings_name_their_key(environ, key):
    with pytest.raises(ConfigError) as raised:
        load(None, environ=environ)
    assert raised.value.key == key


def test_anonymous_defaults_to_nothing_when_a_method_is_configured(tmp_path: Path):
    settings = load(None, environ={"MIRROR_AUTH_METHOD": "htpasswd", "MIRROR_AUTH_HTPASSWD_PATH": "/x"})
    assert settings.auth.anonymous == ()
    file = tmp_path / "m.toml"
    file.write_text('[auth]\nanonymous = ["pull", "push"]\nanonymous_repositories = ["ci/**"]\n[auth.token]\nrealm = "r"\n')
    settings = load(file, environ={})
    assert settings.auth.anonymous == ("pull", "push") and settings.auth.anonymous_repositories == ("ci/**",)


def test_unreadable_rootcertbundle_is_a_config_error_naming_the_key(tmp_path: Path):
    settings = load(None, environ={
        "MIRROR_AUTH_METHOD": "token", "MIRROR_AUTH_TOKEN_REALM": "r", "MIRROR_AUTH_TOKEN_SERVICE": "s",
        "MIRROR_AUTH_TOKEN_ISSUER": "i", "MIRROR_AUTH_TOKEN_ROOTCERTBUNDLE": str(tmp_path / "missing.pem"),
    })
    with pytest.raises(ConfigError) as raised:
        Authorizer(settings.auth)
    assert raised.value.key == "auth.token.rootcertbundle"
