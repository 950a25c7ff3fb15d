"""The pull API answered as registry:2 answers it: headers, negotiation, scoping, listings and OCI errors."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.support import images, skopeo
from tests.support.blobs import push_blob
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, s3_storage
from tests.support.push_http import error_code

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MISSING = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def image(registry_s3, tmp_path_factory):
    work = tmp_path_factory.mktemp("api-images")
    built = images.build_image(work / "app", "v1", [100_000, 20_000], seed=41)
    for tag in ("v1", "v2", "v3", "latest"):
        skopeo.push(work / "app", "v1", f"{registry_s3.host}/team/api:{tag}")
    images.build_index(work / "multi", "v1", layer_sizes=[10_000], seed=42)
    skopeo.push(work / "multi", "v1", f"{registry_s3.host}/team/api-multi:v1")
    other_blob = push_blob(registry_s3.url, "team/other", b"only in team/other")
    return built, other_blob


@pytest.fixture(scope="module")
def edge(seaweed, image, tmp_path_factory):
    with EdgeMirror(tmp_path_factory.mktemp("api-edge"), s3_storage(seaweed.endpoint, "registry"), auth=ANONYMOUS_PUSH) as mirror:
        yield mirror


@pytest.fixture
def client(edge):
    with httpx.Client(base_url=edge.url, timeout=30) as http:
        yield http


def test_version_check_answers_empty_json_with_api_version(client):
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_manifest_by_tag_returns_stored_bytes_with_digest_type_length_and_etag(client, image):
    built, _ = image
    response = client.get("/v2/team/api/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
    assert digest == built.manifest_digest
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers["ETag"] == f'"{digest}"'


def test_head_manifest_has_the_real_content_length_and_no_body(client, image):
    built, _ = image
    response = client.head(f"/v2/team/api/manifests/{built.manifest_digest}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(built.manifest_bytes)
    assert response.content == b""


def test_repeated_accept_headers_are_all_considered(client):
    response = client.get(
        "/v2/team/api/manifests/v1", headers=[("Accept", DOCKER_V2), ("Accept", f"{OCI_INDEX}, {OCI_MANIFEST}")]
    )
    assert response.status_code == 200


def test_oci_manifest_without_accepting_it_is_manifest_unknown(client):
    response = client.get("/v2/team/api/manifests/v1", headers={"Accept": DOCKER_V2})
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"


def test_wildcard_accept_gets_the_oci_index(client):
    response = client.get("/v2/team/api-multi/manifests/v1", headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX


def test_if_none_match_with_the_etag_is_not_modified(client, image):
    built, _ = image
    response = client.get(
        "/v2/team/api/manifests/v1", headers={"Accept": OCI_MANIFEST, "If-None-Match": f'"{built.manifest_digest}"'}
    )
    assert response.status_code == 304


def test_query_strings_are_accepted_everywhere(client, image):
    built, _ = image
    assert client.get("/v2/?ns=docker.io").status_code == 200
    assert client.head("/v2/team/api/manifests/v1?ns=docker.io", headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert client.get(f"/v2/team/api/blobs/{built.config_digest}?ns=docker.io").status_code == 200


def test_blob_get_and_head_carry_length_and_digest(client, image):
    built, _ = image
    head = client.head(f"/v2/team/api/blobs/{built.config_digest}")
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == built.config_digest
    got = client.get(f"/v2/team/api/blobs/{built.config_digest}")
    assert int(head.headers["Content-Length"]) == len(got.content)
    assert "sha256:" + hashlib.sha256(got.content).hexdigest() == built.config_digest


def test_range_request_gets_206_with_content_range(client, image):
    built, _ = image
    layer = built.layer_digests[0]
    whole = client.get(f"/v2/team/api/blobs/{layer}").content
    response = client.get(f"/v2/team/api/blobs/{layer}", headers={"Range": "bytes=10-109"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 10-109/{len(whole)}"
    assert response.content == whole[10:110]


def test_unsatisfiable_range_is_416_with_the_size(client, image):
    built, _ = image
    layer = built.layer_digests[0]
    size = int(client.head(f"/v2/team/api/blobs/{layer}").headers["Content-Length"])
    response = client.get(f"/v2/team/api/blobs/{layer}", headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert error_code(response) == "UNSUPPORTED"


def test_blob_of_another_repository_is_blob_unknown(client, image):
    _, other_blob = image
    assert client.get(f"/v2/team/other/blobs/{other_blob}").status_code == 200
    response = client.get(f"/v2/team/api/blobs/{other_blob}")
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UNKNOWN"


def test_manifest_of_another_repository_is_manifest_unknown(client, image):
    built, _ = image
    response = client.get(f"/v2/team/api-multi/manifests/{built.manifest_digest}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"


def test_unknown_tag_and_blob(client):
    assert error_code(client.get("/v2/team/api/manifests/nope", headers={"Accept": OCI_MANIFEST})) == "MANIFEST_UNKNOWN"
    response = client.get(f"/v2/team/api/blobs/{MISSING}")
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UNKNOWN"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v2/Team/API/manifests/v1", 400, "NAME_INVALID"),
        ("/v2/team//api/manifests/v1", 400, "NAME_INVALID"),
        ("/v2/team/api/manifests/-bad-tag", 404, "MANIFEST_UNKNOWN"),
        ("/v2/team/api/manifests/sha256:abc", 400, "DIGEST_INVALID"),
        ("/v2/team/api/blobs/sha256:xyz", 400, "DIGEST_INVALID"),
        ("/v2/team/api/blobs/md5:" + "0" * 32, 400, "DIGEST_INVALID"),
        ("/v2/nobody/tags/list", 404, "NAME_UNKNOWN"),
    ],
)
def test_bad_references_get_the_right_oci_error(client, path, status, code):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert error_code(response) == code


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_unimplemented_methods_on_manifests_are_unsupported(client, method):
    response = client.request(method, "/v2/team/api/manifests/v1")
    assert response.status_code == 405
    assert error_code(response) == "UNSUPPORTED"


def test_tags_list_is_sorted_and_paginated_with_a_link_header(client):
    full = client.get("/v2/team/api/tags/list").json()
    assert full == {"name": "team/api", "tags": ["latest", "v1", "v2", "v3"]}
    first = client.get("/v2/team/api/tags/list?n=2")
    assert first.json()["tags"] == ["latest", "v1"]
    assert first.headers["Link"] == '</v2/team/api/tags/list?n=2&last=v1>; rel="next"'
    second = client.get("/v2/team/api/tags/list?n=2&last=v1")
    assert second.json()["tags"] == ["v2", "v3"]
    assert "Link" not in second.headers


def test_invalid_page_size_is_400_with_a_spec_code(client):
    response = client.get("/v2/team/api/tags/list?n=-1")
    assert response.status_code == 400
    assert error_code(response) == "UNSUPPORTED"


def test_catalog_lists_repositories_with_pagination(client):
    repositories = client.get("/v2/_catalog").json()["repositories"]
    assert {"team/api", "team/api-multi"} <= set(repositories)
    # A blob but no manifest: not a repository anyone can pull. registry:2 2.8 still lists it (it looks for
    # `_layers`); distribution fixed that in PR #3173 by looking for `_manifests`, as the edge does.
    assert "team/other" not in repositories
    assert repositories == sorted(repositories)
    page = client.get("/v2/_catalog?n=1")
    assert len(page.json()["repositories"]) == 1
    assert 'rel="next"' in page.headers["Link"]


def test_metrics_and_health_endpoints(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    text = client.get("/metrics").text
    for name in ("mirror_cache_requests_total", "mirror_http_requests_total", "mirror_cache_size_bytes"):
        assert name in text


def test_empty_blob_is_served_with_zero_length(client):
    """registry:2 2.8 cannot write an empty blob to this S3 server (UNKNOWN RequestFailure); the edge can."""
    digest = "sha256:" + hashlib.sha256(b"").hexdigest()
    assert client.post(f"/v2/team/empty/blobs/uploads/?digest={digest}", content=b"").status_code == 201
    response = client.get(f"/v2/team/empty/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
