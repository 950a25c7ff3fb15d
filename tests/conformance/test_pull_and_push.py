"""Pull and push workflows of the OCI distribution spec, against the edge and registry:2 alike."""

from __future__ import annotations

from urllib.parse import urljoin

import orjson
import pytest

from tests.conformance.conftest import Target, digest_of, upload_blob

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
MISSING = "sha256:" + "0" * 64


def _push_image(client, repository: str, tag: str, layer: bytes = b"layer bytes") -> tuple[str, bytes]:
    config = orjson.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_digest = upload_blob(client, repository, config)
    layer_digest = upload_blob(client, repository, layer)
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": len(layer)}],
        }
    )
    response = client.put(f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(manifest), manifest


def _absolute(client, location: str) -> str:
    return urljoin(str(client.base_url.join("/")), location)


def test_api_version_check(target: Target):
    with target.client() as client:
        response = client.get("/v2/")
        assert response.status_code == 200
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_pull_manifest_by_tag_and_by_digest(target: Target):
    with target.client() as client:
        repository = target.repository("pull")
        digest, manifest = _push_image(client, repository, "v1")
        for reference in ("v1", digest):
            head = client.head(f"/v2/{repository}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
            got = client.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
            assert head.status_code == got.status_code == 200
            assert got.content == manifest
            assert head.headers["Docker-Content-Digest"] == got.headers["Docker-Content-Digest"] == digest
            assert int(head.headers["Content-Length"]) == len(manifest)


def test_pull_missing_manifest_and_blob_are_404(target: Target):
    with target.client() as client:
        repository = target.repository("missing")
        _push_image(client, repository, "v1")
        assert client.get(f"/v2/{repository}/manifests/nope", headers={"Accept": OCI_MANIFEST}).status_code == 404
        assert client.get(f"/v2/{repository}/manifests/{MISSING}", headers={"Accept": OCI_MANIFEST}).status_code == 404
        response = client.get(f"/v2/{repository}/blobs/{MISSING}")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_pull_of_a_malformed_reference_is_404(target: Target, method: str):
    """spec.md end-3: a manifest pull fails only with 404; a reference that is neither tag nor digest names no
    manifest (the upstream suite pulls ``.INVALID_MANIFEST_NAME``)."""
    with target.client() as client:
        repository = target.repository("malformed")
        _push_image(client, repository, "v1")
        response = client.request(method, f"/v2/{repository}/manifests/.INVALID_MANIFEST_NAME", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 404
        if method == "GET" and response.headers.get("Content-Type") == "application/json":
            assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_pull_blob_head_and_get(target: Target):
    with target.client() as client:
        repository = target.repository("blob")
        digest = upload_blob(client, repository, b"0123456789")
        head = client.head(f"/v2/{repository}/blobs/{digest}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == "10"
        assert client.get(f"/v2/{repository}/blobs/{digest}").content == b"0123456789"


def test_push_blob_chunked(target: Target):
    with target.client() as client:
        repository = target.repository("chunked")
        started = client.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202
        location = _absolute(client, started.headers["Location"])
        first = client.patch(location, content=b"a" * 10, headers={"Content-Range": "0-9", "Content-Type": "application/octet-stream"})
        assert first.status_code == 202
        assert first.headers["Range"] == "0-9"
        location = _absolute(client, first.headers["Location"])
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["Range"] == "0-9"
        second = client.patch(location, content=b"b" * 5, headers={"Content-Range": "10-14", "Content-Type": "application/octet-stream"})
        assert second.status_code == 202
        location = _absolute(client, second.headers["Location"])
        digest = digest_of(b"a" * 10 + b"b" * 5)
        separator = "&" if "?" in location else "?"
        finished = client.put(f"{location}{separator}digest={digest}")
        assert finished.status_code == 201
        assert finished.headers["Location"].endswith(f"/v2/{repository}/blobs/{digest}")
        assert client.get(f"/v2/{repository}/blobs/{digest}").content == b"a" * 10 + b"b" * 5


@pytest.mark.parametrize("target", ["edge"], indirect=True)
def test_push_chunk_out_of_order_is_416(target: Target):
    """spec.md: an out-of-order chunk MUST get 416. registry:2 2.8 ignores Content-Range on PATCH and appends
    (distribution 3.0 added the check), so this runs against the edge only."""
    with target.client() as client:
        repository = target.repository("order")
        location = _absolute(client, client.post(f"/v2/{repository}/blobs/uploads/").headers["Location"])
        first = client.patch(location, content=b"a" * 10, headers={"Content-Range": "0-9", "Content-Type": "application/octet-stream"})
        location = _absolute(client, first.headers["Location"])
        skipped = client.patch(location, content=b"c" * 5, headers={"Content-Range": "20-24", "Content-Type": "application/octet-stream"})
        assert skipped.status_code == 416


def test_push_monolithic_single_post_is_created_or_falls_back_to_a_session(target: Target):
    """spec.md: a registry MAY refuse the single-POST push (then it answers 202 and the client uses the session)."""
    with target.client() as client:
        repository = target.repository("single-post")
        data = b"single post"
        response = client.post(
            f"/v2/{repository}/blobs/uploads/?digest={digest_of(data)}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code in (201, 202)
        if response.status_code == 201:
            assert client.get(f"/v2/{repository}/blobs/{digest_of(data)}").content == data


def test_push_cross_repository_mount(target: Target):
    with target.client() as client:
        source, destination = target.repository("mount-src"), target.repository("mount-dst")
        digest = upload_blob(client, source, b"mount me")
        mounted = client.post(f"/v2/{destination}/blobs/uploads/?mount={digest}&from={source}")
        assert mounted.status_code == 201
        assert client.get(f"/v2/{destination}/blobs/{digest}").content == b"mount me"


def test_push_mount_of_an_unknown_blob_falls_back_to_a_session(target: Target):
    with target.client() as client:
        source, destination = target.repository("mount-src"), target.repository("mount-dst")
        upload_blob(client, source, b"something")
        response = client.post(f"/v2/{destination}/blobs/uploads/?mount={MISSING}&from={source}")
        assert response.status_code == 202


def test_push_manifest_returns_location_and_digest(target: Target):
    with target.client() as client:
        repository = target.repository("manifest")
        digest, _ = _push_image(client, repository, "v1")
        head = client.head(f"/v2/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert head.headers["Docker-Content-Digest"] == digest


def test_push_manifest_with_an_unknown_blob_is_rejected(target: Target):
    with target.client() as client:
        repository = target.repository("unknown-blob")
        config_digest = upload_blob(client, repository, b"{}")
        manifest = orjson.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": 2},
                "layers": [{"mediaType": LAYER, "digest": MISSING, "size": 1}],
            }
        )
        response = client.put(f"/v2/{repository}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
