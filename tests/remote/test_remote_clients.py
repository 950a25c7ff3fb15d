"""Real clients through the remote tier: dockerd with registry-mirrors (the default route) and containerd with
``?ns=`` (the route's ns, and an unknown ns that falls back)."""

from __future__ import annotations

import hashlib
from typing import Iterator

import pytest

from tests.remote.conftest import NS, blob_key, wait_for_writeback
from tests.support import skopeo
from tests.support.daemons import Containerd, Dockerd

DEAD_SERVER = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def containerd(tmp_path_factory) -> Iterator[Containerd]:
    daemon = Containerd(tmp_path_factory.mktemp("remote-containerd"))
    try:
        yield daemon
    finally:
        daemon.stop()


def test_dockerd_pulls_a_remote_only_image_that_a_second_edge_then_serves_from_the_bucket_alone(
    containerd, make_edge, push_remote, proxy, s3, tmp_path
):
    image = push_remote("team/hub", [700_000, 90_000, 4_000], seed=201)
    first = make_edge("first")
    dockerd = Dockerd(tmp_path / "dockerd", containerd, first.url)
    try:
        dockerd.docker("pull", "team/hub:v1")
        assert dockerd.inspect("team/hub:v1")["Id"] == image.config_digest
        dockerd.docker("rmi", "team/hub:v1")
        dockerd.docker("pull", "team/hub:v1")  # a second pull: from the first edge's cache
    finally:
        dockerd.stop()
    wait_for_writeback(first)
    for digest in image.blob_digests:
        data = s3.get_object(Bucket="remote-tier", Key=blob_key(digest))["Body"].read()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest

    proxy.stop()  # the remote is gone for everyone from here on
    second = make_edge("second")
    skopeo.pull(f"{second.host}/team/hub:v1", tmp_path / "pulled")
    assert skopeo.blob_names(tmp_path / "pulled") == set(image.blob_digests)
    for digest, size in zip(image.blob_digests, [image.config_size, *image.layer_sizes]):
        assert proxy.blob_bytes(digest) == size, digest  # each blob's bytes left the remote exactly once


def test_containerd_with_the_routes_ns_is_served_by_the_remote_tier(containerd, make_edge, push_remote, proxy):
    image = push_remote("team/ctr", [150_000], seed=202)
    edge = make_edge()
    hosts = containerd.hosts_dir(NS, DEAD_SERVER, edge.url)
    containerd.ctr("images", "pull", "--plain-http", "--hosts-dir", str(hosts), f"{NS}/team/ctr:v1", namespace="routed")
    assert {image.manifest_digest, *image.blob_digests} <= containerd.content_digests("routed")
    assert edge.metrics().value("mirror_remote_requests_total", route=NS, op="get", status="ok") >= 1


def test_containerd_falls_back_when_the_edge_has_no_route_for_the_ns(containerd, make_edge, push_remote, proxy):
    image = push_remote("team/fallback", [40_000], seed=203)
    edge = make_edge()
    hosts = containerd.hosts_dir(proxy.host, proxy.url, edge.url)
    containerd.ctr("images", "pull", "--plain-http", "--hosts-dir", str(hosts), f"{proxy.host}/team/fallback:v1", namespace="fallback")
    assert {image.manifest_digest, *image.blob_digests} <= containerd.content_digests("fallback")
    assert edge.metrics().value("mirror_http_requests_total", route="manifest", status="404") >= 1
    assert edge.metrics().value("mirror_remote_requests_total") == 0
