"""Tag listing of a repository whose only manifest was deleted, compared with registry:2 on the same storage.

registry:2 2.8 answers ``NAME_UNKNOWN`` only when its driver cannot list ``_manifests/tags`` at all; a repository
whose tags were all removed still has that directory, so it answers ``200 {"name": ..., "tags": null}``.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage, s3_storage
from tests.support.push_http import OCI_MANIFEST, push_tiny_image
from tests.support.registry2 import Registry2


def _push_then_delete_the_only_manifest(url: str, name: str) -> None:
    manifest = push_tiny_image(url, name, "v1", f"the only layer of {name}".encode())["manifest"]
    assert httpx.delete(f"{url}/v2/{name}/manifests/{manifest}", timeout=30).status_code == 202


def _tags(url: str, name: str) -> tuple[int, bytes]:
    response = httpx.get(f"{url}/v2/{name}/tags/list", timeout=30)
    return response.status_code, response.content.strip()


@pytest.fixture(scope="module")
def on_filesystem(tmp_path_factory):
    root = tmp_path_factory.mktemp("tags-after-delete-fs")
    storage = filesystem_storage(root / "storage")
    storage["storage"]["delete"] = True
    with Registry2.filesystem(root / "storage", workdir=root / "registry") as registry:
        with EdgeMirror(root / "edge", storage, auth=ANONYMOUS_PUSH) as edge:
            yield edge, registry


@pytest.fixture(scope="module")
def on_seaweedfs(seaweed, registry_s3, tmp_path_factory):
    storage = s3_storage(seaweed.endpoint, "registry")
    storage["storage"]["delete"] = True
    with EdgeMirror(tmp_path_factory.mktemp("tags-after-delete-s3"), storage, auth=ANONYMOUS_PUSH) as edge:
        yield edge, registry_s3


@pytest.mark.parametrize("deleted_through", ["edge", "registry"])
def test_tags_list_after_the_last_manifest_is_deleted_matches_registry2_on_a_filesystem(on_filesystem, deleted_through):
    edge, registry = on_filesystem
    name = f"emptied/fs-{deleted_through}"
    _push_then_delete_the_only_manifest(edge.url if deleted_through == "edge" else registry.url, name)
    expected = _tags(registry.url, name)
    assert expected == (200, b'{"name":"%s","tags":null}' % name.encode())  # registry:2 2.8, as the note says
    assert _tags(edge.url, name) == expected


@pytest.mark.parametrize("deleted_through", ["edge", "registry"])
def test_tags_list_after_the_last_manifest_is_deleted_is_200_as_registry2_on_seaweedfs(on_seaweedfs, deleted_through):
    """SeaweedFS keeps each emptied tag folder as a common prefix, so registry:2 still lists the removed tag (whose
    manifest it answers 404 for); the edge lists only tags with a current link: null here."""
    edge, registry = on_seaweedfs
    name = f"emptied/s3-{deleted_through}"
    _push_then_delete_the_only_manifest(edge.url if deleted_through == "edge" else registry.url, name)
    status, _ = _tags(registry.url, name)
    listed = httpx.get(f"{registry.url}/v2/{name}/tags/list", timeout=30).json()["tags"] or []
    stale = [tag for tag in listed if httpx.get(f"{registry.url}/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}).status_code == 404]
    assert status == 200 and stale == listed == ["v1"]
    assert _tags(edge.url, name) == (200, b'{"name":"%s","tags":null}' % name.encode())
