"""Content discovery (tags list) and content management (deletes) workflows, against the edge and registry:2."""

from __future__ import annotations

import pytest

from tests.conformance.conftest import Target, upload_blob
from tests.conformance.test_pull_and_push import OCI_MANIFEST, _push_image


def test_tags_list_returns_every_tag(target: Target):
    with target.client() as client:
        repository = target.repository("tags")
        for tag in ("b", "a", "c"):
            _push_image(client, repository, tag)
        response = client.get(f"/v2/{repository}/tags/list")
        assert response.status_code == 200
        assert response.json() == {"name": repository, "tags": ["a", "b", "c"]}


@pytest.mark.parametrize("target", ["edge"], indirect=True)
def test_tags_list_paginates_with_n_and_last(target: Target):
    """spec.md: with ``n`` the list MUST hold at most n tags, continuing after ``last``. registry:2 2.8 ignores
    both for tags (distribution 3.0 added them), so this runs against the edge only."""
    with target.client() as client:
        repository = target.repository("pages")
        for tag in ("t1", "t2", "t3"):
            _push_image(client, repository, tag)
        first = client.get(f"/v2/{repository}/tags/list?n=2")
        assert first.json()["tags"] == ["t1", "t2"]
        rest = client.get(f"/v2/{repository}/tags/list?n=2&last=t2")
        assert rest.json()["tags"] == ["t3"]


def test_tags_list_of_an_unknown_repository_is_404(target: Target):
    with target.client() as client:
        response = client.get(f"/v2/{target.repository('nothing')}/tags/list")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_delete_manifest_by_digest(target: Target):
    with target.client() as client:
        repository = target.repository("delete-manifest")
        digest, _ = _push_image(client, repository, "v1")
        assert client.delete(f"/v2/{repository}/manifests/{digest}").status_code == 202
        assert client.get(f"/v2/{repository}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}).status_code == 404


@pytest.mark.parametrize(
    "target",
    [
        "edge",
        pytest.param(
            "registry2",
            marks=pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason="registry:2 lists tag directories; SeaweedFS keeps a deleted tag's empty prefix in listings",
            ),
        ),
    ],
    indirect=True,
)
def test_tags_list_leaves_out_the_tags_of_a_deleted_manifest(target: Target):
    """spec.md: once deleted, a tag is gone. On backends that keep empty prefixes (SeaweedFS here) only tags that
    still have a current link may be listed."""
    with target.client() as client:
        repository = target.repository("delete-tag")
        _push_image(client, repository, "kept", layer=b"kept layer")
        digest, _ = _push_image(client, repository, "gone", layer=b"gone layer")
        assert client.delete(f"/v2/{repository}/manifests/{digest}").status_code == 202
        assert client.get(f"/v2/{repository}/tags/list").json()["tags"] == ["kept"]


def test_delete_blob(target: Target):
    with target.client() as client:
        repository = target.repository("delete-blob")
        digest = upload_blob(client, repository, b"delete this blob")
        assert client.delete(f"/v2/{repository}/blobs/{digest}").status_code == 202
        assert client.get(f"/v2/{repository}/blobs/{digest}").status_code == 404
