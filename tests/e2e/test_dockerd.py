"""dockerd with ``registry-mirrors`` pointed at the edge: docker.io names are served from the bucket."""

from __future__ import annotations

import time


def test_docker_pull_is_served_by_the_edge_and_a_second_pull_reads_nothing_from_the_bucket(dockerd, edge, e2e_images):
    app = e2e_images["app"]
    before = edge.metrics()
    dockerd.docker("pull", "team/app:v1")
    image = dockerd.inspect("team/app:v1")
    assert image["Id"] == app.config_digest
    assert len(image["RootFS"]["Layers"]) == len(app.layer_digests)
    after_first = edge.metrics()
    assert after_first.value("mirror_http_requests_total", route="blob", status="200") >= before.value(
        "mirror_http_requests_total", route="blob", status="200"
    ) + len(app.layer_digests) + 1
    assert image["RepoDigests"] == [f"team/app@{app.manifest_digest}"]

    dockerd.docker("rmi", "team/app:v1")
    dockerd.docker("pull", "team/app:v1")
    after_second = edge.metrics()
    assert dockerd.inspect("team/app:v1")["Id"] == app.config_digest
    assert after_second.value("mirror_backend_bytes_total") == after_first.value("mirror_backend_bytes_total")
    assert after_second.value("mirror_served_bytes_total", source="cache") > after_first.value(
        "mirror_served_bytes_total", source="cache"
    )


def test_docker_falls_back_fast_when_the_edge_does_not_have_the_name(dockerd, edge):
    started = time.monotonic()
    result = dockerd.docker("pull", "team/not-here:v1", check=False)
    assert result.returncode != 0
    assert time.monotonic() - started < 30
    assert edge.metrics().value("mirror_http_requests_total", route="manifest", status="404") >= 1


def test_docker_pulls_the_amd64_image_of_a_multi_platform_index(dockerd, e2e_images):
    multi = e2e_images["multi"]
    amd64 = next(image for image in multi.images if image.platform == ("linux", "amd64"))
    dockerd.docker("pull", "team/multi:v1")
    image = dockerd.inspect("team/multi:v1")
    assert image["Architecture"] == "amd64"
    assert image["Id"] == amd64.config_digest
    assert image["RepoDigests"] == [f"team/multi@{multi.manifest_digest}"]
