"""containerd pulling through the edge via ``hosts.toml`` (Kubernetes nodes do exactly this)."""

from __future__ import annotations

from tests.support.daemons import node_config
from tests.support.images import BuiltImage

# Nothing listens here: only the edge can serve these pulls.
DEAD_REGISTRY = "127.0.0.1:9"


def _expected_content(image: BuiltImage) -> set[str]:
    return {image.manifest_digest, image.config_digest, *image.layer_digests}


def test_ctr_pull_of_the_central_registry_name_goes_through_the_edge(containerd, edge, e2e_images):
    app = e2e_images["app"]
    hosts = containerd.hosts_dir(DEAD_REGISTRY, f"http://{DEAD_REGISTRY}", edge.url)
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts), f"{DEAD_REGISTRY}/team/app:v1", namespace="central")
    assert _expected_content(app) <= containerd.content_digests("central")
    listing = containerd.ctr("images", "ls", namespace="central")
    assert app.manifest_digest in listing


def test_ctr_pull_of_a_docker_io_name_sends_ns_and_is_served(containerd, edge, e2e_images):
    app = e2e_images["app"]
    before = edge.metrics().value("mirror_http_requests_total", route="manifest", status="200")
    hosts = containerd.hosts_dir("docker.io", "https://registry-1.docker.io", edge.url)
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts), "docker.io/team/app:v1", namespace="hub")
    assert _expected_content(app) <= containerd.content_digests("hub")
    assert edge.metrics().value("mirror_http_requests_total", route="manifest", status="200") > before


def test_ctr_pull_of_a_multi_platform_index_fetches_only_the_host_platform(containerd, edge, e2e_images):
    multi = e2e_images["multi"]
    amd64 = next(image for image in multi.images if image.platform == ("linux", "amd64"))
    arm64 = next(image for image in multi.images if image.platform == ("linux", "arm64"))
    hosts = containerd.hosts_dir(DEAD_REGISTRY, f"http://{DEAD_REGISTRY}", edge.url)
    containerd.ctr(
        "images", "pull", "--platform", "linux/amd64", "--hosts-dir", str(hosts), f"{DEAD_REGISTRY}/team/multi:v1",
        namespace="multi",
    )
    content = containerd.content_digests("multi")
    assert multi.manifest_digest in content
    assert _expected_content(amd64) <= content
    assert not set(arm64.layer_digests) & content


def test_ctr_pull_falls_back_to_the_registry_when_the_edge_is_down(containerd, registry_s3, e2e_images):
    app = e2e_images["app"]
    hosts = containerd.hosts_dir(registry_s3.host, registry_s3.url, f"http://{DEAD_REGISTRY}")
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts), f"{registry_s3.host}/team/app:v1", namespace="fallback")
    assert _expected_content(app) <= containerd.content_digests("fallback")


def test_ctr_pull_falls_through_a_dead_edge_to_the_host_the_node_already_had(containerd, registry_s3, e2e_images, tmp_path):
    app = e2e_images["app"]
    certs = tmp_path / "certs.d"
    (certs / DEAD_REGISTRY).mkdir(parents=True)
    (certs / DEAD_REGISTRY / "hosts.toml").write_text(
        f'server = "http://{DEAD_REGISTRY}"\n\n[host."{registry_s3.url}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    node_config("write", "--certs-dir", str(certs), "--registry", DEAD_REGISTRY, "--edge", "http://127.0.0.1:9",
                "--prepend-existing")
    containerd.ctr("images", "pull", "--hosts-dir", str(certs), f"{DEAD_REGISTRY}/team/app:v1", namespace="prepend")
    assert _expected_content(app) <= containerd.content_digests("prepend")
