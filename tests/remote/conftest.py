"""A remote registry behind the bucket: a real registry:2 with token auth (its token server in this process), a
counting proxy in front of it, and edges on a bucket of their own with an ``[[upstream]]`` route to it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.support import images
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.registry2 import Registry2
from tests.support.remote_token import CountingProxy, RecordingTokenServer

BUCKET = "remote-tier"
NS = "remote.test"
PREFIX = "remote"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture(scope="session")
def token_server(session_tmp: Callable[[str], Path]) -> Iterator[RecordingTokenServer]:
    server = RecordingTokenServer(session_tmp("remote-token"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def remote(token_server: RecordingTokenServer, session_tmp: Callable[[str], Path]) -> Iterator[Registry2]:
    registry = Registry2.filesystem(session_tmp("remote-fs"), workdir=session_tmp("remote"), auth=token_server.registry_auth())
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def proxy(remote: Registry2) -> Iterator[CountingProxy]:
    """A fresh counting proxy per test, so each test counts only its own remote traffic."""
    counting = CountingProxy(remote.host, storage_root=Path(remote.config["storage"]["filesystem"]["rootdirectory"]))
    try:
        yield counting
    finally:
        counting.stop()


@pytest.fixture(scope="session")
def push_remote(remote: Registry2, token_server: RecordingTokenServer, session_tmp: Callable[[str], Path]):
    """``push_remote("team/app", sizes, seed)`` builds an image and pushes it to the remote as ``:v1``."""
    work = session_tmp("remote-images")

    def push(name: str, layer_sizes: list[int], seed: int, index: bool = False) -> Any:
        directory = work / f"{name.replace('/', '_')}-{seed}"
        if index:
            built = images.build_index(directory, "v1", layer_sizes=layer_sizes, seed=seed)
        else:
            built = images.build_image(directory, "v1", layer_sizes, seed=seed)
        subprocess.run(
            ["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", "--dest-creds",
             f"{token_server.username}:{token_server.password}", f"oci:{directory}:v1", f"docker://{remote.host}/{name}:v1"],
            check=True, capture_output=True, timeout=120,
        )
        return built

    return push


@pytest.fixture(scope="session")
def remote_bucket(seaweed: Any) -> str:
    seaweed.create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(scope="session")
def s3(seaweed: Any) -> Any:
    return boto3.client(
        "s3", endpoint_url=seaweed.endpoint, aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1",
        config=BotoConfig(s3={"addressing_style": "path"}),
    )


def upstream_route(proxy: CountingProxy, token_server: RecordingTokenServer, **overrides: Any) -> dict[str, Any]:
    route = {
        "ns": NS, "default": True, "url": proxy.url, "prefix": PREFIX, "tag_ttl": "10m",
        "username": token_server.username, "password": token_server.password,
    }
    route.update(overrides)
    return route


@pytest.fixture
def make_edge(seaweed: Any, remote_bucket: str, proxy: CountingProxy, token_server: RecordingTokenServer, tmp_path: Path):
    """Start edges on the remote-tier bucket with a route to the remote (through this test's proxy)."""
    started: list[EdgeMirror] = []

    def make(name: str = "edge", route: dict[str, Any] | None = None, **sections: Any) -> EdgeMirror:
        sections.setdefault("admin", {"enabled": True, "token": ADMIN_TOKEN})
        edge = EdgeMirror(
            tmp_path / name, s3_storage(seaweed.endpoint, remote_bucket),
            upstream=[route or upstream_route(proxy, token_server)], **sections,
        )
        started.append(edge.start())
        return edge

    try:
        yield make
    finally:
        for edge in started:
            edge.stop()


def bucket_key_exists(s3: Any, key: str) -> bool:
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def blob_key(digest: str) -> str:
    hex_ = digest.split(":", 1)[1]
    return f"docker/registry/v2/blobs/sha256/{hex_[:2]}/{hex_}/data"


def repository_key(name: str, rest: str) -> str:
    return f"docker/registry/v2/repositories/{PREFIX}/{name}/{rest}"


def wait_for_writeback(edge: EdgeMirror, timeout: float = 30) -> None:
    """Until the edge has no write-back job left (from the admin stats)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{edge.url}/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5).json()
        if answer["writeback_pending"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"write-back still pending after {timeout}s:\n{edge.log_tail()}")
