"""Safe defaults: with no [auth] config an edge serves pulls and refuses every write, writing nothing."""

from __future__ import annotations

import hashlib

import httpx
import orjson
import pytest

from tests.support import images, skopeo
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.push_http import OCI_MANIFEST, error_code

REPOSITORY = "defaults/app"
PREFIX = f"docker/registry/v2/repositories/{REPOSITORY}/"


@pytest.fixture(scope="module")
def image(registry_s3, tmp_path_factory):
    work = tmp_path_factory.mktemp("auth-defaults")
    built = images.build_image(work / "app", "v1", [200_000], seed=81)
    skopeo.push(work / "app", "v1", f"{registry_s3.host}/{REPOSITORY}:v1")
    return built


@pytest.fixture(scope="module")
def edge(seaweed, image, tmp_path_factory):
    storage = s3_storage(seaweed.endpoint, "registry")
    storage["storage"]["delete"] = True  # so only access control can refuse a delete
    with EdgeMirror(tmp_path_factory.mktemp("auth-defaults-edge"), storage) as mirror:
        yield mirror


def test_pull_works_without_any_auth_config(edge, image):
    response = httpx.get(f"{edge.url}/v2/{REPOSITORY}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert "sha256:" + hashlib.sha256(response.content).hexdigest() == image.manifest_digest
    assert httpx.get(f"{edge.url}/v2/").status_code == 200
    assert edge.metrics().value("mirror_auth_requests_total", method="none", result="anonymous") >= 2


def test_push_delete_and_mount_are_refused_and_nothing_appears_in_the_bucket(edge, seaweed, image):
    before = set(seaweed.keys("registry", PREFIX))
    data = b"an anonymous push must not land" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    attempts = [
        httpx.post(f"{edge.url}/v2/{REPOSITORY}/blobs/uploads/", params={"digest": digest}, content=data),
        httpx.post(f"{edge.url}/v2/{REPOSITORY}/blobs/uploads/"),
        httpx.put(f"{edge.url}/v2/{REPOSITORY}/manifests/v2", content=b"{}", headers={"Content-Type": OCI_MANIFEST}),
        httpx.delete(f"{edge.url}/v2/{REPOSITORY}/manifests/{image.manifest_digest}"),
        httpx.post(f"{edge.url}/v2/other/app/blobs/uploads/", params={"mount": image.layer_digests[0], "from": REPOSITORY}),
    ]
    for response in attempts:
        assert (response.status_code, error_code(response)) == (403, "DENIED"), response.request.url
        assert "anonymous" in orjson.loads(response.content)["errors"][0]["message"]
    assert set(seaweed.keys("registry", PREFIX)) == before
    assert not seaweed.keys("registry", f"docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/")
    assert not seaweed.keys("registry", "docker/registry/v2/repositories/other/app/")
    assert httpx.get(f"{edge.url}/v2/{REPOSITORY}/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200


def test_skopeo_push_to_a_default_edge_fails_with_the_denial(edge, image, tmp_path):
    with pytest.raises(skopeo.SkopeoError) as failed:
        skopeo.push(image.layout_dir, "v1", f"{edge.host}/{REPOSITORY}:hijacked")
    assert "denied" in str(failed.value).lower()
