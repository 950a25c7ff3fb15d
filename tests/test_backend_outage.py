"""When the backend goes away the edge keeps serving what it has: stale tags, cached content, honest /readyz."""

from __future__ import annotations

import httpx
import pytest

from tests.support import images, skopeo
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.registry2 import Registry2

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def doomed_backend(doomed_seaweed, tmp_path):
    """A private SeaweedFS that the test may stop, holding an image pushed through registry:2."""
    registry = Registry2.s3(doomed_seaweed.endpoint, "registry", workdir=tmp_path / "registry")
    try:
        built = images.build_image(tmp_path / "image", "v1", [150_000], seed=51)
        skopeo.push(tmp_path / "image", "v1", f"{registry.host}/team/outage:v1")
    finally:
        registry.stop()
    return doomed_seaweed, built


def test_stale_tag_and_cached_content_are_served_while_the_backend_is_down(doomed_backend, tmp_path):
    seaweed, built = doomed_backend
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), cache={"tag_ttl": "0s"}) as edge:
        manifest = httpx.get(f"{edge.url}/v2/team/outage/manifests/v1", headers={"Accept": OCI_MANIFEST})
        layer = httpx.get(f"{edge.url}/v2/team/outage/blobs/{built.layer_digests[0]}")
        assert manifest.status_code == layer.status_code == 200
        seaweed.stop()  # tag_ttl is 0s: the tag must be read again, and the backend is down

        again = httpx.get(f"{edge.url}/v2/team/outage/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=60)
        assert again.status_code == 200
        assert again.content == manifest.content
        assert httpx.get(f"{edge.url}/v2/team/outage/blobs/{built.layer_digests[0]}").content == layer.content
        assert edge.metrics().value("mirror_cache_requests_total", kind="tag", result="stale") >= 1
        assert httpx.get(f"{edge.url}/readyz", timeout=60).status_code == 503


def test_edge_starts_with_the_backend_down_and_serves_its_cache(doomed_backend, tmp_path):
    seaweed, built = doomed_backend
    # tag_ttl 0s: the tag remembered on disk is stale however fast the restart, so it is served as stale.
    edge = EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), cache={"tag_ttl": "0s"})
    with edge:
        assert httpx.get(f"{edge.url}/v2/team/outage/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
    seaweed.stop()
    with edge:
        assert httpx.get(f"{edge.url}/healthz").status_code == 200
        assert httpx.get(f"{edge.url}/readyz", timeout=60).status_code == 503
        cached = httpx.get(f"{edge.url}/v2/team/outage/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=60)
        assert cached.status_code == 200
        assert cached.headers["Docker-Content-Digest"] == built.manifest_digest


def test_uncached_content_while_the_backend_is_down_is_a_clear_503(doomed_backend, tmp_path):
    seaweed, built = doomed_backend
    seaweed.stop()
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry")) as edge:
        response = httpx.get(f"{edge.url}/v2/team/outage/blobs/{built.layer_digests[0]}", timeout=120)
        assert response.status_code == 503
        assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
