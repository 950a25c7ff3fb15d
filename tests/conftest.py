"""Session-wide real components: one SeaweedFS S3 server and the central registry:2 writing into its bucket.

Teardown is in ``finally`` blocks, so the processes stop whether tests pass, fail or error; anything a crashed
session still leaves running is killed by the ``atexit`` hook in ``tests.support.processes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support import images
from tests.support.registry2 import Registry2
from tests.support.seaweed import SeaweedS3

BUCKET = "registry"


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Make a fresh directory under the session's temp dir: ``session_tmp("images")`` -> ``.../images0``."""

    def make(name: str) -> Path:
        return tmp_path_factory.mktemp(name)

    return make


@pytest.fixture(scope="session", autouse=True)
def _image_cache(session_tmp: Callable[[str], Path]) -> None:
    """Built test images are cached (and hard-linked from) a directory of this session."""
    images.set_cache_dir(session_tmp("image-cache"))


@pytest.fixture(scope="session")
def seaweed(session_tmp: Callable[[str], Path]) -> Iterator[SeaweedS3]:
    """One SeaweedFS S3 server for the whole session, with the bucket `BUCKET` created."""
    server = SeaweedS3(session_tmp("seaweed"))
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_s3(seaweed: SeaweedS3, session_tmp: Callable[[str], Path]) -> Iterator[Registry2]:
    """The central registry:2 with the S3 driver on bucket `BUCKET` of the session's SeaweedFS."""
    seaweed.create_bucket(BUCKET)  # idempotent: already made by `seaweed`, which edge-only tests rely on
    registry = Registry2.s3(seaweed.endpoint, BUCKET, workdir=session_tmp("registry-s3"))
    try:
        yield registry
    finally:
        registry.stop()
