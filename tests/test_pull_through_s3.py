"""Images pushed by the real registry:2 (S3 driver on SeaweedFS) pulled through the edge with skopeo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import images, skopeo
from tests.support.edge import EdgeMirror, s3_storage

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def pushed(registry_s3, tmp_path_factory) -> dict[str, object]:
    """Three images in the central registry: small multi-layer, a two-platform OCI index, a ≥ 200 MiB layer."""
    root = tmp_path_factory.mktemp("s3-images")
    small = images.build_image(root / "small", "v1", [200_000, 1_500_000, 30_000], seed=11)
    skopeo.push(root / "small", "v1", f"{registry_s3.host}/team/small:v1")
    multi = images.build_index(root / "multi", "v1", layer_sizes=[400_000, 90_000], seed=12)
    skopeo.push(root / "multi", "v1", f"{registry_s3.host}/team/multi:v1")
    large = images.build_image(root / "large", "v1", [210 * MIB, 100_000], seed=13)
    skopeo.push(root / "large", "v1", f"{registry_s3.host}/team/large:v1")
    return {"small": small, "multi": multi, "large": large}


@pytest.fixture
def edge(seaweed, tmp_path: Path):
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), fill={"part_size": "16MiB", "first_part_size": "1MiB"}) as mirror:
        yield mirror


@pytest.mark.parametrize("image", ["small", "multi", "large"])
def test_pull_through_edge_is_byte_identical_to_registry2_and_second_pull_reads_nothing(
    image, pushed, registry_s3, edge, tmp_path
):
    reference = f"team/{image}:v1"
    direct = skopeo.pull(f"{registry_s3.host}/{reference}", tmp_path / "direct")
    first = skopeo.pull(f"{edge.host}/{reference}", tmp_path / "first")
    assert skopeo.dir_digests(first) == skopeo.dir_digests(direct)
    after_first = edge.metrics()
    assert after_first.value("mirror_backend_bytes_total") > 0
    assert after_first.value("mirror_fills_total", result="ok") >= 1

    second = skopeo.pull(f"{edge.host}/{reference}", tmp_path / "second")
    assert skopeo.dir_digests(second) == skopeo.dir_digests(direct)
    after_second = edge.metrics()
    assert after_second.value("mirror_backend_bytes_total") == after_first.value("mirror_backend_bytes_total")
    assert after_second.value("mirror_backend_requests_total") == after_first.value("mirror_backend_requests_total") + _probes(after_second, after_first)
    assert after_second.value("mirror_cache_requests_total", kind="blob", result="hit") > 0


def _probes(after, before) -> float:
    """Readiness probes are the only backend requests allowed between the two pulls."""
    return after.value("mirror_backend_requests_total", op="probe") - before.value("mirror_backend_requests_total", op="probe")
