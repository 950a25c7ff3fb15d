"""One token server trusted by a real registry:2 and by the edge: the same allow/deny, status and error code.

Each cell plays a client: the request without credentials, then on a Bearer challenge a token from the token
server for the challenge's scope (with the user's Basic credentials, or none for anonymous), then the request
again with that token.
"""

from __future__ import annotations

import itertools

import httpx
import orjson
import pytest

from tests.support.edge import EdgeMirror, s3_storage
from tests.support.push_http import OCI_MANIFEST, push_tiny_image
from tests.support.registry2 import Registry2
from tests.support.tokens import ISSUER, SERVICE, TestCA, TokenServer, User, fetch_token, parse_challenge, write_bundle

ROOT = "auth-matrix"
REPOSITORIES = ["alice/app", "shared/base"]
USERS = {
    "admin": User("admin-pw", {"*": ["pull", "push", "delete"], "registry:catalog": ["*"]}),
    "alice": User("alice-pw", {"alice/*": ["pull", "push", "delete"], "shared/*": ["pull"]}),
    "bob": User("bob-pw", {"shared/*": ["pull"]}),
}
PEOPLE = ["admin", "alice", "bob", "anonymous"]
ACTIONS = ["pull", "push", "delete", "mount"]
UNKNOWN_DIGEST = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    ca = TestCA()
    bundle = write_bundle(tmp_path_factory.mktemp("auth-matrix-keys") / "roots.pem", ca.pem())
    server = TokenServer(ca.leaf(), USERS, anonymous={"shared/*": ["pull"]})
    server.bundle = bundle
    try:
        yield server
    finally:
        server.stop()


def _token_settings(server: TokenServer) -> dict[str, str]:
    return {"realm": server.realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(server.bundle)}


@pytest.fixture(scope="module")
def registry(seaweed, token_server, tmp_path_factory):
    registry = Registry2.s3(
        seaweed.endpoint, "registry", rootdirectory=ROOT, workdir=tmp_path_factory.mktemp("auth-registry"),
        auth={"token": _token_settings(token_server)},
    )
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def edge(seaweed, token_server, tmp_path_factory):
    storage = s3_storage(seaweed.endpoint, "registry", rootdirectory=ROOT)
    storage["storage"]["delete"] = True
    with EdgeMirror(
        tmp_path_factory.mktemp("auth-edge"), storage, auth={"method": "token"}, **{"auth.token": _token_settings(token_server)}
    ) as mirror:
        yield mirror


@pytest.fixture(scope="module")
def seeded(registry, token_server):
    """Each repository holds one image pushed by admin through registry:2; returns each one's layer digest."""
    layers = {}
    for index, name in enumerate(REPOSITORIES):
        token = fetch_token(token_server.realm, SERVICE, [f"repository:{name}:pull,push"], ("admin", "admin-pw"))
        digests = push_tiny_image(registry.url, name, "v1", f"layer of {name} {index}".encode() * 100, {"Authorization": f"Bearer {token}"})
        layers[name] = digests["layer"]
    return layers


def _request(action: str, repository: str, layers: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    other = next(name for name in REPOSITORIES if name != repository)
    return {
        "pull": ("GET", f"/v2/{repository}/manifests/v1", {}),
        "push": ("POST", f"/v2/{repository}/blobs/uploads/", {}),
        "delete": ("DELETE", f"/v2/{repository}/manifests/{UNKNOWN_DIGEST}", {}),
        "mount": ("POST", f"/v2/{repository}/blobs/uploads/", {"mount": layers[other], "from": other}),
        "catalog": ("GET", "/v2/_catalog", {}),
    }[action]


def _as_client(url: str, person: str, method: str, path: str, params: dict[str, str]) -> tuple[httpx.Response, str]:
    """The final response and the `error` of the last challenge ("" if none)."""
    headers = {"Accept": OCI_MANIFEST}
    response = httpx.request(method, url + path, params=params, headers=headers, timeout=30)
    challenge = response.headers.get("www-authenticate", "")
    if response.status_code != 401 or not challenge.startswith("Bearer"):
        return response, ""
    _, fields = parse_challenge(challenge)
    credentials = (person, USERS[person].password) if person in USERS else None
    token = fetch_token(fields["realm"], fields["service"], fields.get("scope", "").split(), credentials)
    response = httpx.request(method, url + path, params=params, headers={**headers, "Authorization": f"Bearer {token}"}, timeout=30)
    _, fields = parse_challenge(response.headers.get("www-authenticate", "") or "x ")
    return response, fields.get("error", "")


def _outcome(response: httpx.Response, error: str) -> tuple:
    if response.status_code in (401, 403):
        return ("denied", response.status_code, orjson.loads(response.content)["errors"][0]["code"], error)
    return ("allowed",)


CELLS = [*itertools.product(PEOPLE, REPOSITORIES, ACTIONS), *[(person, "-", "catalog") for person in PEOPLE]]


@pytest.mark.parametrize(("person", "repository", "action"), CELLS, ids=["-".join(cell) for cell in CELLS])
def test_edge_decides_like_registry2(registry, edge, seeded, person, repository, action):
    method, path, params = _request(action, repository if repository != "-" else REPOSITORIES[0], seeded)
    central = _outcome(*_as_client(registry.url, person, method, path, params))
    at_edge = _outcome(*_as_client(edge.url, person, method, path, params))
    assert at_edge == central


def test_the_matrix_has_both_allowed_and_denied_cells(registry, seeded):
    outcomes = {action: set() for action in ACTIONS}
    for person, repository, action in itertools.product(PEOPLE, REPOSITORIES, ACTIONS):
        method, path, params = _request(action, repository, seeded)
        outcomes[action].add(_outcome(*_as_client(registry.url, person, method, path, params))[0])
    assert all(found == {"allowed", "denied"} for found in outcomes.values()), outcomes


def test_v2_answers_the_same_challenge_as_registry2(registry, edge):
    central = httpx.get(f"{registry.url}/v2/")
    at_edge = httpx.get(f"{edge.url}/v2/")
    assert (at_edge.status_code, at_edge.headers["www-authenticate"]) == (central.status_code, central.headers["www-authenticate"])
    assert orjson.loads(at_edge.content)["errors"][0]["code"] == "UNAUTHORIZED"


def test_pull_challenge_names_realm_service_and_scope_like_registry2(registry, edge):
    path = "/v2/alice/app/manifests/v1"
    central = httpx.get(registry.url + path).headers["www-authenticate"]
    assert httpx.get(edge.url + path).headers["www-authenticate"] == central
    assert 'scope="repository:alice/app:pull"' in central


def test_token_for_another_repository_is_insufficient_scope(edge, token_server, seeded):
    token = fetch_token(token_server.realm, SERVICE, ["repository:alice/app:pull"], ("alice", "alice-pw"))
    response = httpx.get(f"{edge.url}/v2/shared/base/manifests/v1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    allowed = httpx.get(f"{edge.url}/v2/alice/app/manifests/v1", headers={"Authorization": f"Bearer {token}", "Accept": OCI_MANIFEST})
    assert allowed.status_code == 200


def test_a_refused_token_is_invalid_token_and_counted(edge, token_server):
    before = edge.metrics().value("mirror_auth_requests_total", method="token", result="invalid")
    forged = TestCA("stranger").leaf().mint([{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
    response = httpx.get(f"{edge.url}/v2/alice/app/manifests/v1", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert edge.metrics().value("mirror_auth_requests_total", method="token", result="invalid") == before + 1


def test_registry2_accepts_the_libtrust_kid_form_the_edge_computes(seaweed, tmp_path_factory):
    """Cross-check of our libtrust key ID: registry:2 2.8 itself accepts a token naming its key that way."""
    from tests.support.tokens import self_signed

    signer = self_signed()
    bundle = write_bundle(tmp_path_factory.mktemp("libtrust") / "roots.pem", signer.pem())
    settings = {"realm": "http://127.0.0.1:9/token", "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}
    with Registry2.s3(seaweed.endpoint, "registry", rootdirectory=ROOT, auth={"token": settings}) as registry:
        for form, expected in (("libtrust", 200), ("thumbprint", 401)):  # 2.8 knows only libtrust key IDs
            token = signer.mint([{"type": "registry", "name": "catalog", "actions": ["*"]}], form=form)
            response = httpx.get(f"{registry.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == expected, (form, response.text)
