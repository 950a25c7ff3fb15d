"""The embedded filesystem backend pointed at a real registry:2 filesystem root serves that registry's images."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import images, skopeo
from tests.support.edge import EdgeMirror, filesystem_storage
from tests.support.registry2 import Registry2

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def registry_fs(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry-fs-root")
    registry = Registry2.filesystem(root)
    try:
        yield registry, root
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def pushed_fs(registry_fs, tmp_path_factory):
    registry, _ = registry_fs
    work = tmp_path_factory.mktemp("fs-images")
    images.build_image(work / "small", "v1", [300_000, 700_000], seed=21)
    skopeo.push(work / "small", "v1", f"{registry.host}/team/small:v1")
    images.build_index(work / "multi", "v1", layer_sizes=[200_000], seed=22)
    skopeo.push(work / "multi", "v1", f"{registry.host}/library/multi:v1")
    images.build_image(work / "large", "v1", [205 * MIB], seed=23)
    skopeo.push(work / "large", "v1", f"{registry.host}/team/large:v1")


@pytest.mark.parametrize("reference", ["team/small:v1", "library/multi:v1", "team/large:v1"])
def test_filesystem_backend_serves_registry2_root_byte_identically(reference, registry_fs, pushed_fs, tmp_path: Path):
    registry, root = registry_fs
    with EdgeMirror(tmp_path / "edge", filesystem_storage(root)) as edge:
        direct = skopeo.pull(f"{registry.host}/{reference}", tmp_path / "direct")
        first = skopeo.pull(f"{edge.host}/{reference}", tmp_path / "first")
        assert skopeo.dir_digests(first) == skopeo.dir_digests(direct)
        read_by_first = edge.metrics().value("mirror_backend_bytes_total")
        assert read_by_first > 0

        second = skopeo.pull(f"{edge.host}/{reference}", tmp_path / "second")
        assert skopeo.dir_digests(second) == skopeo.dir_digests(direct)
        assert edge.metrics().value("mirror_backend_bytes_total") == read_by_first
