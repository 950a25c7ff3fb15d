"""Session-wide real components: one SeaweedFS S3 server and the central registry:2 writing into its bucket.

Teardown is in ``finally`` blocks, so the processes stop whether tests pass, fail or error; anything a crashed
session still leaves running is killed by the ``atexit`` hook in ``tests.support.processes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support import images, tier
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, s3_storage
from tests.support.registry2 import Registry2
from tests.support.seaweed import SeaweedS3

BUCKET = "registry"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast", action="store_true", help="the fast tier only: tests/unit and tests/properties, no server process"
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("fast"):
        tier.enter_fast()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--fast``, only the fast tier's directories are collected (their modules alone are imported)."""
    if config.getoption("fast") and not tier.in_fast_tier(collection_path):
        return True
    return None


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


@pytest.fixture
def doomed_seaweed(tmp_path: Path) -> Iterator[SeaweedS3]:
    """A private SeaweedFS, with the bucket `BUCKET`, that the test may stop (a backend outage)."""
    server = SeaweedS3(tmp_path / "doomed-seaweed")
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


@pytest.fixture(scope="module")
def push_edges(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeMirror, EdgeMirror]]:
    """Two edges on bucket `BUCKET` taking anonymous pushes in 5 MiB parts, as in two regions (one pair a module)."""
    storage = s3_storage(seaweed.endpoint, BUCKET)
    pair = [
        EdgeMirror(tmp_path_factory.mktemp(f"push-{side}"), storage, upload={"part_size": "5MiB"}, auth=ANONYMOUS_PUSH)
        for side in ("a", "b")
    ]
    try:
        for edge in pair:
            edge.start()
        yield pair[0], pair[1]
    finally:
        for edge in pair:
            edge.stop()
