"""Hostile input at the API gets a clear OCI error, never a 500, and nothing half-written: manifest validation
before any write, huge Range numbers, the catalog as registry:2 defines it, and closed metric labels."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from mirror import errors, layout
from mirror.reference import parse_digest
from tests.support.digests import digest_of
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage
from tests.support.push_http import error_code

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hardening-root")


@pytest.fixture(scope="module")
def edge(root, tmp_path_factory):
    with EdgeMirror(tmp_path_factory.mktemp("hardening"), filesystem_storage(root), auth=ANONYMOUS_PUSH) as mirror:
        yield mirror


@pytest.fixture
def client(edge):
    with httpx.Client(base_url=edge.url, timeout=30) as http:
        yield http


def _push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    digest = digest_of(data)
    assert client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", content=data).status_code == 201
    return digest


def _manifest(config: dict, layers: list[dict], **extra: object) -> bytes:
    return orjson.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers, **extra})


def _nothing_written(root: Path, name: str, data: bytes, tag: str) -> None:
    digest = parse_digest(digest_of(data))
    assert not (root / layout.blob_data(digest)).exists()
    assert not (root / layout.manifest_revision_link(name, digest)).exists()
    assert not (root / layout.tag_directory(name, tag)).exists()


@pytest.mark.parametrize("subject", [{"digest": 12345, "size": 1, "mediaType": OCI_MANIFEST}, {"digest": None}, "sha256:abc", [1]])
def test_a_manifest_with_a_bad_subject_is_invalid_and_writes_nothing(client, root, subject):
    config = _push_blob(client, "hard/subject", b'{"c":1}')
    data = _manifest({"mediaType": OCI_CONFIG, "digest": config, "size": 7}, [], subject=subject)
    response = client.put("/v2/hard/subject/manifests/v1", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID"
    _nothing_written(root, "hard/subject", data, "v1")


def test_a_config_with_urls_must_still_be_linked(client, root):
    data = _manifest({"mediaType": OCI_CONFIG, "digest": digest_of(b"never pushed"), "size": 12, "urls": ["https://example.com/c"]}, [])
    response = client.put("/v2/hard/urls/manifests/v1", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400, response.text
    assert error_code(response) in {"MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN"}
    _nothing_written(root, "hard/urls", data, "v1")


def test_an_ordinary_layer_with_urls_must_still_be_linked(client, root):
    config = _push_blob(client, "hard/urls", b'{"c":2}')
    layer = {"mediaType": OCI_LAYER, "digest": digest_of(b"not pushed"), "size": 10, "urls": ["https://example.com/l"]}
    data = _manifest({"mediaType": OCI_CONFIG, "digest": config, "size": 7}, [layer])
    response = client.put("/v2/hard/urls/manifests/v2", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400, response.text
    assert error_code(response) in {"MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN"}
    _nothing_written(root, "hard/urls", data, "v2")


def test_a_non_distributable_layer_with_urls_need_not_be_linked(client):
    config = _push_blob(client, "hard/foreign", b'{"c":3}')
    layer = {"mediaType": NONDISTRIBUTABLE, "digest": digest_of(b"elsewhere"), "size": 9, "urls": ["https://example.com/f"]}
    data = _manifest({"mediaType": OCI_CONFIG, "digest": config, "size": 7}, [layer])
    response = client.put("/v2/hard/foreign/manifests/v1", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "header", ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "7" * 5000], ids=["start", "end", "suffix"]
)
def test_a_range_of_thousands_of_digits_is_not_a_500(client, header):
    digest = _push_blob(client, "hard/range", b"0123456789")
    response = client.get(f"/v2/hard/range/blobs/{digest}", headers={"Range": header})
    assert response.status_code in (206, 416), response.text


def test_a_suffix_range_of_an_empty_blob_is_416(client):
    digest = _push_blob(client, "hard/range", b"")
    response = client.get(f"/v2/hard/range/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */0"


@pytest.mark.parametrize("content_range", ["0-" + "9" * 5000, "9" * 5000 + "-" + "9" * 5001], ids=["end", "both"])
def test_an_upload_content_range_of_thousands_of_digits_is_416(client, content_range):
    location = client.post("/v2/hard/chunks/blobs/uploads/").headers["Location"]
    response = client.patch(location, content=b"abc", headers={"Content-Range": content_range})
    assert response.status_code == 416, response.text
    assert error_code(response) == errors.RANGE_INVALID.code


def _repository(root: Path, name: str, marker: str) -> None:
    directory = root / layout.repository(name) / marker
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "keep").write_text("x")


def test_the_catalog_lists_repositories_with_manifests_as_distribution_does(client, root):
    """distribution PR #3173: `_manifests` marks a repository (registry:2 2.8 still looks for `_layers`, which
    misses repositories whose layers were all mounted and lists ones holding only blobs)."""
    _repository(root, "catalog/with-manifests", "_manifests")
    _repository(root, "catalog/only-layers", "_layers")
    _repository(root, "catalog/with-manifests/nested", "_manifests")
    listed = client.get("/v2/_catalog").json()["repositories"]
    assert "catalog/with-manifests" in listed
    assert "catalog/with-manifests/nested" in listed
    assert "catalog/only-layers" not in listed


def test_a_repeated_catalog_request_does_not_walk_the_backend_again(edge, client, root):
    for index in range(5):
        _repository(root, f"walk/repo{index}", "_manifests")
    first = client.get("/v2/_catalog?n=2")
    assert first.status_code == 200
    lists_before = edge.metrics().value("mirror_backend_requests_total", op="list")
    again = client.get("/v2/_catalog?n=2")
    assert again.json() == first.json()
    assert edge.metrics().value("mirror_backend_requests_total", op="list") == lists_before


def test_a_small_catalog_page_stops_listing_early(root, tmp_path):
    for index in range(30):
        _repository(root, f"zz-early/repo{index:02d}", "_manifests")
    with EdgeMirror(tmp_path, filesystem_storage(root)) as fresh:  # no listing cached yet
        page = httpx.get(f"{fresh.url}/v2/_catalog?n=1&last=zz-early/repo00", timeout=30)
        assert page.json()["repositories"] == ["zz-early/repo01"]
        assert 'rel="next"' in page.headers["Link"]
        assert fresh.metrics().value("mirror_backend_requests_total", op="list") < 12


def test_invented_methods_and_unknown_routes_are_counted_as_other(edge, client):
    for index in range(5):
        client.request(f"INVENTED{index}", "/v2/")
        client.get(f"/nowhere/{index}")
    methods = edge.metrics().label_values("mirror_http_requests_total", "method")
    routes = edge.metrics().label_values("mirror_http_requests_total", "route")
    assert not any(method.startswith("INVENTED") for method in methods)
    assert "other" in methods and "other" in routes
    assert not any(route.startswith("/nowhere") for route in routes)
