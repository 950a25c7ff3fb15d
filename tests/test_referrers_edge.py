"""The edge's own referrers behaviour beyond the spec: its cache across a backend outage, and ``reindex`` runs."""

from __future__ import annotations

import os
import subprocess
import sys

import bcrypt
import httpx

from mirror import layout
from mirror.reference import parse_digest
from tests.conformance.test_referrers import (
    OCI_MANIFEST,
    SIGNATURE,
    push_referrers_tag,
    listed,
    push_artifact,
    push_subject,
    referrers,
)
from tests.support.edge import ANONYMOUS_PUSH, REPO_ROOT, EdgeMirror, filesystem_storage, s3_storage


def test_a_cached_referrers_list_is_served_stale_while_the_backend_is_down(doomed_seaweed, tmp_path):
    storage = s3_storage(doomed_seaweed.endpoint, "registry")
    with EdgeMirror(tmp_path / "edge", storage, cache={"tag_ttl": "0s"}, auth=ANONYMOUS_PUSH) as edge:
        with httpx.Client(base_url=edge.url, timeout=60) as client:
            subject = push_subject(client, "team/signed")
            signature, _, _ = push_artifact(client, "team/signed", subject)
            assert listed(referrers(client, "team/signed", subject[0])) == [signature]
            doomed_seaweed.stop()  # tag_ttl is 0s: the list must be read again, and the backend is down
            assert listed(referrers(client, "team/signed", subject[0])) == [signature]
            assert edge.metrics().value("mirror_cache_requests_total", kind="referrers", result="stale") >= 1
            never_asked = referrers(client, "team/signed", "sha256:" + "1" * 64)
            assert never_asked.status_code == 503
            assert never_asked.json()["errors"][0]["code"] == "UNAVAILABLE"


def _reindex(edge: EdgeMirror, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror", "reindex", "--config", str(edge.config_path), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_reindex_without_a_name_rebuilds_every_repository(tmp_path):
    root = tmp_path / "data"
    edge = EdgeMirror(tmp_path / "edge", filesystem_storage(root), auth=ANONYMOUS_PUSH)
    with edge, httpx.Client(base_url=edge.url, timeout=60) as client:
        pushed = {}
        for name in ("team/a", "team/b/c"):
            subject = push_subject(client, name)
            pushed[name] = (subject[0], push_artifact(client, name, subject)[0])
    for name, (subject, referrer) in pushed.items():  # as if registry:2 had written them: no index
        entry = root / layout.referrer_entry(name, parse_digest(subject), parse_digest(referrer))
        entry.unlink()
    done = _reindex(edge)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "team/a: 2 manifests, 1 referrers indexed, 0 stale entries removed",
        "team/b/c: 2 manifests, 1 referrers indexed, 0 stale entries removed",
    ]
    for name, (subject, referrer) in pushed.items():
        assert (root / layout.referrer_entry(name, parse_digest(subject), parse_digest(referrer))).is_file()


def test_reindex_of_an_invalid_name_says_so_and_exits_2(tmp_path):
    edge = EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"))
    done = _reindex(edge, "Not A Name")
    assert done.returncode == 2
    assert "repository name" in done.stderr


def test_the_referrers_api_asks_for_pull_access_like_the_manifests_it_lists(tmp_path):
    (tmp_path / "data").mkdir()
    users = tmp_path / "users"
    users.write_text(f"ops:{bcrypt.hashpw(b'ops-pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    auth = {"auth": {"method": "htpasswd"}, "auth.htpasswd": {"realm": "edge", "path": str(users)}}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), **auth) as edge:
        path = f"{edge.url}/v2/team/app/referrers/sha256:{'2' * 64}"
        refused = httpx.get(path)
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert listed(httpx.get(path, auth=("ops", "ops-pw"))) == []


def test_a_push_whose_index_entry_cannot_be_written_sends_no_oci_subject_and_the_tag_fallback_serves(tmp_path):
    """Without OCI-Subject the client keeps the referrers tag itself (spec.md); the edge then lists it from there."""
    root = tmp_path / "data"
    edge = EdgeMirror(tmp_path / "edge", filesystem_storage(root), auth=ANONYMOUS_PUSH)
    with edge, httpx.Client(base_url=edge.url, timeout=60) as client:
        subject = push_subject(client, "team/blocked")
        (root / layout.referrers_root("team/blocked")).write_bytes(b"a file where the index directory would go")
        signature, manifest, response = push_artifact(client, "team/blocked", subject)
        assert response.status_code == 201
        assert "OCI-Subject" not in response.headers
        entry = {"mediaType": OCI_MANIFEST, "digest": signature, "size": len(manifest), "artifactType": SIGNATURE}
        push_referrers_tag(client, "team/blocked", subject[0], [entry])
        assert listed(referrers(client, "team/blocked", subject[0])) == [signature]
