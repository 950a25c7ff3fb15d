"""skopeo (and so podman / CRI-O) with a ``registries.conf`` mirror entry pulls through the edge."""

from __future__ import annotations

from tests.support import examples, skopeo

DEAD_REGISTRY = "127.0.0.1:9"


def test_skopeo_with_a_registries_conf_mirror_pulls_through_the_edge(edge, e2e_images, registry_s3, tmp_path):
    conf = tmp_path / "registries.conf"
    conf.write_text(examples.text("registries.conf", edge.host, DEAD_REGISTRY))
    through_mirror = skopeo.pull(f"{DEAD_REGISTRY}/team/app:v1", tmp_path / "mirror", registries_conf=conf)
    direct = skopeo.pull(f"{registry_s3.host}/team/app:v1", tmp_path / "direct")
    assert skopeo.dir_digests(through_mirror) == skopeo.dir_digests(direct)


def test_the_central_registry_runs_from_the_storj_example_with_64_mib_chunks(registry_s3):
    assert registry_s3.config["storage"]["s3"]["chunksize"] == 64 * 1024 * 1024
    assert registry_s3.config["storage"]["redirect"] == {"disable": True}
