"""Session-wide real components: one SeaweedFS S3 server and the central registry:2 writing into its bucket."""

from __future__ import annotations

import pytest

from tests.support.registry2 import Registry2
from tests.support.seaweed import SeaweedS3

BUCKET = "registry"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_s3(seaweed, tmp_path_factory):
    registry = Registry2.s3(seaweed.endpoint, BUCKET, workdir=tmp_path_factory.mktemp("registry-s3"))
    try:
        yield registry
    finally:
        registry.stop()
