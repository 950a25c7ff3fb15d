"""The conformance suite runs every check against both the edge and the reference registry:2 on the same bucket.

The checks follow the OCI distribution-spec conformance workflows (pull, push, content discovery, content
management), written from ``spec.md``. A check that registry:2 fails is wrong unless the spec allows both
behaviours; such checks accept either answer and say why.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, s3_storage

_counter = itertools.count()


@dataclass
class Target:
    name: str
    url: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def repository(self, purpose: str) -> str:
        return f"conformance/{self.name}/{purpose}-{next(_counter)}"


@pytest.fixture(scope="session")
def conformance_edge(seaweed, tmp_path_factory):
    storage = s3_storage(seaweed.endpoint, "registry")
    storage["storage"]["delete"] = True
    with EdgeMirror(tmp_path_factory.mktemp("conformance-edge"), storage, auth=ANONYMOUS_PUSH) as edge:
        yield edge


@pytest.fixture(scope="session")
def other_edge(seaweed, tmp_path_factory):
    """A second edge process on the same bucket with its own cache: what one edge writes, every edge must serve."""
    storage = s3_storage(seaweed.endpoint, "registry")
    storage["storage"]["delete"] = True
    with EdgeMirror(tmp_path_factory.mktemp("conformance-other-edge"), storage) as edge:
        yield edge


@pytest.fixture(params=["edge", "registry2"])
def target(request, registry_s3) -> Target:
    if request.param == "edge":
        return Target("edge", request.getfixturevalue("conformance_edge").url)
    return Target("registry2", registry_s3.url)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_blob(client: httpx.Client, repository: str, data: bytes) -> str:
    """POST then PUT ?digest= with the body: the push every registry must support."""
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    digest = digest_of(data)
    separator = "&" if "?" in location else "?"
    finished = client.put(
        urljoin(client.base_url.join("/").__str__(), location) + f"{separator}digest={digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert finished.status_code == 201, finished.text
    return digest
