"""Real clients end to end: images pushed to the central registry:2, pulled by dockerd, containerd and skopeo
through an edge on the same bucket."""

from __future__ import annotations

import pytest

from tests.conftest import BUCKET
from tests.support import examples, images, skopeo
from tests.support.daemons import Containerd, Dockerd
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.registry2 import Registry2


@pytest.fixture(scope="session")
def registry_s3(seaweed, tmp_path_factory):
    """The central registry:2 configured from ``deploy/examples/registry-config.yml`` (the Storj example: 64 MiB
    chunks, CopyObject-only moves), aimed at the session's SeaweedFS bucket."""
    storage = examples.registry_storage(seaweed.endpoint, BUCKET)
    registry = Registry2(storage, tmp_path_factory.mktemp("e2e-registry"))
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def e2e_images(registry_s3, tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-images")
    app = images.build_image(work / "app", "v1", [400_000, 1_200_000, 3_000], seed=61)
    skopeo.push(work / "app", "v1", f"{registry_s3.host}/team/app:v1")
    multi = images.build_index(work / "multi", "v1", layer_sizes=[300_000], seed=62)
    skopeo.push(work / "multi", "v1", f"{registry_s3.host}/team/multi:v1")
    return {"app": app, "multi": multi}


@pytest.fixture(scope="session")
def edge(seaweed, e2e_images, tmp_path_factory):
    with EdgeMirror(tmp_path_factory.mktemp("e2e-edge"), s3_storage(seaweed.endpoint, "registry")) as mirror:
        yield mirror


@pytest.fixture(scope="session")
def containerd(tmp_path_factory):
    daemon = Containerd(tmp_path_factory.mktemp("containerd"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def dockerd(containerd, edge, tmp_path_factory):
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd"), containerd, edge.url)
    try:
        yield daemon
    finally:
        daemon.stop()
