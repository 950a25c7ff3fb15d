"""Pushes through the edge land in the shared bucket in registry:2's layout, visible to registry:2 and other edges."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.support import images, skopeo
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, s3_storage

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def edges(seaweed, tmp_path_factory):
    """Two edges on the same bucket, as in two regions."""
    storage = s3_storage(seaweed.endpoint, "registry")
    first = EdgeMirror(tmp_path_factory.mktemp("push-edge-a"), storage, upload={"part_size": "8MiB"}, auth=ANONYMOUS_PUSH).start()
    second = EdgeMirror(tmp_path_factory.mktemp("push-edge-b"), storage, upload={"part_size": "8MiB"}, auth=ANONYMOUS_PUSH).start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize(
    ("kind", "layers"), [("image", [300_000, 1_000_000, 20_000]), ("index", [200_000]), ("large", [210 * MIB])]
)
def test_push_through_the_edge_is_served_identically_by_registry2_and_a_second_edge(
    kind, layers, edges, registry_s3, tmp_path
):
    first, second = edges
    reference = f"pushed/{kind}:v1"
    if kind == "index":
        images.build_index(tmp_path / "layout", "v1", layer_sizes=layers, seed=71)
    else:
        images.build_image(tmp_path / "layout", "v1", layers, seed=72 + len(layers))
    skopeo.push(tmp_path / "layout", "v1", f"{first.host}/{reference}")

    via_registry = skopeo.pull(f"{registry_s3.host}/{reference}", tmp_path / "registry")
    via_second = skopeo.pull(f"{second.host}/{reference}", tmp_path / "second")
    via_first = skopeo.pull(f"{first.host}/{reference}", tmp_path / "first")
    assert skopeo.dir_digests(via_second) == skopeo.dir_digests(via_registry) == skopeo.dir_digests(via_first)
    pushed_blobs = {path.name for path in (tmp_path / "layout" / "blobs" / "sha256").iterdir()}
    for name, digest in skopeo.dir_digests(via_registry).items():
        if name in pushed_blobs:
            assert digest == name, f"blob {name} changed on its way through the edge"


def _manifest_digest(edge_url: str, reference: str) -> str:
    response = httpx.head(f"{edge_url}/v2/{reference}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    return response.headers["Docker-Content-Digest"]


def test_tag_moved_through_the_edge_is_visible_on_that_edge_at_once(edges, tmp_path):
    first, _ = edges
    one = images.build_image(tmp_path / "one", "v1", [10_000], seed=81)
    two = images.build_image(tmp_path / "two", "v1", [10_000], seed=82)
    skopeo.push(tmp_path / "one", "v1", f"{first.host}/moving/app:stable")
    assert _manifest_digest(first.url, "moving/app/manifests/stable") == one.manifest_digest
    skopeo.push(tmp_path / "two", "v1", f"{first.host}/moving/app:stable")
    assert _manifest_digest(first.url, "moving/app/manifests/stable") == two.manifest_digest


def test_tag_moved_through_registry2_is_seen_once_the_tag_ttl_has_passed(seaweed, registry_s3, tmp_path):
    # tag_ttl is 0s, so it has always passed: no real-time wait. That a tag is trusted until tag_ttl and read
    # again after it is tested on a fake clock in tests/unit/test_link_cache.py.
    storage = s3_storage(seaweed.endpoint, "registry")
    with EdgeMirror(tmp_path / "edge", storage, cache={"tag_ttl": "0s"}, auth=ANONYMOUS_PUSH) as edge:
        one = images.build_image(tmp_path / "one", "v1", [10_000], seed=83)
        two = images.build_image(tmp_path / "two", "v1", [10_000], seed=84)
        skopeo.push(tmp_path / "one", "v1", f"{registry_s3.host}/moving/central:stable")
        assert _manifest_digest(edge.url, "moving/central/manifests/stable") == one.manifest_digest
        skopeo.push(tmp_path / "two", "v1", f"{registry_s3.host}/moving/central:stable")
        assert _manifest_digest(edge.url, "moving/central/manifests/stable") == two.manifest_digest


def test_chunked_upload_across_two_edges_completes(edges, registry_s3):
    first, second = edges
    chunks = [bytes([index]) * size for index, size in enumerate([9 * MIB, 3 * MIB, 6 * MIB + 5, 700])]
    data = b"".join(chunks)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = httpx.post(f"{first.url}/v2/pushed/chunked/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    offset = 0
    for number, chunk in enumerate(chunks):
        edge = (first, second)[number % 2]
        response = httpx.patch(
            f"{edge.url}{location}",
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}", "Content-Type": "application/octet-stream"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        offset += len(chunk)
        assert response.headers["Range"] == f"0-{offset - 1}"
    finished = httpx.put(f"{second.url}{location}?digest={digest}", timeout=120)
    assert finished.status_code == 201, finished.text
    assert finished.headers["Docker-Content-Digest"] == digest
    assert httpx.get(f"{registry_s3.url}/v2/pushed/chunked/blobs/{digest}", timeout=60).content == data
    assert httpx.get(f"{first.url}/v2/pushed/chunked/blobs/{digest}", timeout=60).content == data


def test_push_to_the_filesystem_backend_is_served_by_registry2_on_that_root(tmp_path):
    from tests.support.edge import filesystem_storage
    from tests.support.registry2 import Registry2

    root = tmp_path / "root"
    built = images.build_image(tmp_path / "layout", "v1", [6 * MIB + 3, 4_000], seed=91)
    with EdgeMirror(tmp_path / "edge", filesystem_storage(root), upload={"part_size": "5MiB"}, auth=ANONYMOUS_PUSH) as edge:
        skopeo.push(tmp_path / "layout", "v1", f"{edge.host}/fs/app:v1")
    registry = Registry2.filesystem(root, workdir=tmp_path / "registry")
    try:
        pulled = skopeo.pull(f"{registry.host}/fs/app:v1", tmp_path / "pulled")
    finally:
        registry.stop()
    for digest in [built.config_digest, *built.layer_digests]:
        hex_digest = digest.split(":", 1)[1]
        assert (pulled / hex_digest).read_bytes() == built.blob_path(digest).read_bytes()
