"""A running edge with an htpasswd entry that has no hash (`bob:`): bob can neither pull nor push, as in registry:2."""

from __future__ import annotations

import bcrypt
import httpx
import orjson
import pytest

from tests.support.edge import EdgeMirror, filesystem_storage

# The password of the dummy hash main's htpasswd.py checked unknown users against; with `bob:` it let bob in.
OLD_DUMMY_PASSWORD = "not a password of anyone"
MANIFEST = orjson.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"})


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    work = tmp_path_factory.mktemp("htpasswd-edge")
    (work / "data").mkdir()
    users = work / "users"
    users.write_text(f"ops:{bcrypt.hashpw(b'ops-pw', bcrypt.gensalt(rounds=4)).decode()}\nbob:\n")
    auth = {"auth": {"method": "htpasswd"}, "auth.htpasswd": {"realm": "edge", "path": str(users)}}
    with EdgeMirror(work / "edge", filesystem_storage(work / "data"), **auth) as edge:
        edge.users = users
        yield edge


@pytest.mark.parametrize("password", [OLD_DUMMY_PASSWORD, ""])
def test_a_user_whose_entry_has_no_hash_cannot_pull(edge, password):
    for path in ("/v2/", "/v2/team/app/tags/list"):
        response = httpx.get(edge.url + path, auth=("bob", password))
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == 'Basic realm="edge"'
    assert httpx.get(f"{edge.url}/v2/", auth=("ops", "ops-pw")).status_code == 200


@pytest.mark.parametrize("password", [OLD_DUMMY_PASSWORD, ""])
def test_a_user_whose_entry_has_no_hash_cannot_push(edge, password):
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    pushed = httpx.put(f"{edge.url}/v2/team/app/manifests/v1", content=MANIFEST, headers=headers, auth=("bob", password))
    assert pushed.status_code == 401, pushed.text
    assert pushed.json()["errors"][0]["code"] == "UNAUTHORIZED"
    started = httpx.post(f"{edge.url}/v2/team/app/blobs/uploads/", auth=("bob", password))
    assert started.status_code == 401, started.text


def test_the_refused_entry_is_counted_and_named_in_the_log(edge):
    assert edge.metrics().value("mirror_auth_htpasswd_refused_entries") == 1
    assert f"{edge.users} line 2 (user 'bob')" in edge.log_path.read_text()
