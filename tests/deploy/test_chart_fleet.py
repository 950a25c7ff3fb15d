"""What a fleet operator expects of the chart (issue 21, item 9): per-platform values files, image digest,
extra env/volumes, drain, resources everywhere, `helm test`, a stable peers secret, the rollout path for node
config. Rendered and linted by real Helm, validated with kubernetes-validate, node-config.py run on scratch trees."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import CHART, REPO, find, load_values, render
from tests.deploy.test_node_config import ORIGINAL, run

DAEMONSET = "edge-edge-mirror"
PLATFORM_VALUES = sorted((REPO / "deploy/examples").glob("values-*.yaml"))
README = (REPO / "README.md").read_text()


def pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pod spec rendered (DaemonSet templates and bare Pods)."""
    return [item["spec"]["template"]["spec"] if item["kind"] == "DaemonSet" else item["spec"]
            for item in objects if item["kind"] in ("DaemonSet", "Pod")]


def edge_pod(objects):
    return find(objects, "DaemonSet", DAEMONSET)["spec"]["template"]["spec"]


def test_there_are_values_files_for_each_platform():
    names = {path.stem.removeprefix("values-") for path in PLATFORM_VALUES}
    assert names >= {"eks-al2", "eks-al2023", "gke", "aks", "bottlerocket", "talos", "k3s", "canary"}


@pytest.mark.parametrize("values_file", PLATFORM_VALUES, ids=[path.stem for path in PLATFORM_VALUES])
def test_each_platform_values_file_lints_and_renders_valid_objects(values_file: Path):
    values = load_values(values_file)
    report = helm.lint(CHART, values, strict=True, kube_version="v1.30.0")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    for item in render(values):
        if item["kind"] not in {"ServiceMonitor", "PodMonitor", "PrometheusRule"}:
            kubernetes_validate.validate(item, "1.30", strict=True)


@pytest.mark.parametrize("platform", ["bottlerocket", "talos", "k3s"])
def test_platforms_that_own_containerds_config_get_no_host_etc_mount(platform):
    objects = render(load_values(REPO / f"deploy/examples/values-{platform}.yaml"))
    for spec in pods(objects):
        assert not [volume for volume in spec.get("volumes", []) if volume.get("hostPath", {}).get("path", "")
                    .endswith("containerd")], platform
    assert not [item for item in objects if item["metadata"]["name"] == "edge-edge-mirror-restore"]


def test_the_canary_values_roll_out_to_opted_in_nodes_in_dry_run_one_node_at_a_time():
    objects = render(load_values(REPO / "deploy/examples/values-canary.yaml"))
    daemonset = find(objects, "DaemonSet", DAEMONSET)
    spec = daemonset["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "edge-mirror.example.com/enabled": "true"}
    assert daemonset["spec"]["updateStrategy"] == {"type": "OnDelete"}
    init = next(container for container in spec["initContainers"] if container["name"] == "node-config")
    assert "--dry-run" in init["args"]


def test_dry_run_prints_the_diff_and_changes_nothing_on_the_node(tmp_path):
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io/hosts.toml").write_text(ORIGINAL)
    (tmp_path / "authorization").write_text("Basic c2VjcmV0\n")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    result = run("write", "--dry-run", "--certs-dir", tmp_path, "--edge", "http://192.0.2.10:5000", "--registry",
                 "docker.io", "--registry", "ghcr.io", "--prepend-existing", "--authorization-file", tmp_path / "authorization")
    assert result.returncode == 0, result.stderr
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert '+[host."http://192.0.2.10:5000"]' in result.stdout and "(would be)" in result.stdout
    assert "c2VjcmV0" not in result.stdout and "<redacted>" in result.stdout


@pytest.mark.parametrize(
    ("image", "reference"),
    [({"digest": "sha256:" + "a" * 64}, "images.example.com/edge-mirror@sha256:" + "a" * 64),
     ({"tag": "0.2.0", "digest": "sha256:" + "b" * 64}, "images.example.com/edge-mirror:0.2.0@sha256:" + "b" * 64)],
    ids=["digest", "tag-and-digest"],
)
def test_the_image_can_be_pinned_by_digest_in_every_container(image, reference):
    objects = render({"image": image})
    images = {container["image"] for spec in pods(objects) for container in
              spec.get("initContainers", []) + spec["containers"]}
    assert images == {reference}


def test_the_schema_refuses_a_digest_that_is_not_sha256():
    with pytest.raises(helm.HelmValuesError):
        render({"image": {"digest": "latest"}})


def test_the_image_architectures_match_what_the_multiarch_build_makes():
    platforms = re.search(r"^PLATFORMS \?= (.+)$", (REPO / "Makefile").read_text(), re.M).group(1).split(",")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert [platform.removeprefix("linux/") for platform in platforms] == values["image"]["architectures"]


def test_extra_env_volumes_and_mounts_reach_the_edge_container():
    objects = render({"extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
                      "extraVolumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
                      "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}]})
    spec = edge_pod(objects)
    edge = spec["containers"][0]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in edge["env"]
    assert {"name": "ca", "configMap": {"name": "corp-ca"}} in spec["volumes"]
    assert {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True} in edge["volumeMounts"]
    kubernetes_validate.validate(find(objects, "DaemonSet", DAEMONSET), "1.30", strict=True)


def test_a_stopping_edge_keeps_serving_pulls_in_flight_for_the_drain_time():
    spec = edge_pod(render({"drainSeconds": 45}))
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "python3" and pre_stop[-1] == "45"
    started = subprocess.run([sys.executable, *pre_stop[1:-1], "0"], timeout=10)  # the command itself runs
    assert started.returncode == 0
    assert spec["terminationGracePeriodSeconds"] > 45


def test_every_container_of_every_pod_has_resources_for_quota_enforced_namespaces():
    objects = render({"cache": {"type": "hostPath", "deleteOnUninstall": True}})
    containers = [container for spec in pods(objects) for container in spec.get("initContainers", []) + spec["containers"]]
    assert len(containers) >= 6
    for container in containers:
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"], container["name"]


def test_helm_test_asks_the_nodes_edge_for_the_registry_api():
    pod = find(render(), "Pod", "edge-edge-mirror-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["command"][-1] == "http://edge-edge-mirror.edge-mirror.svc:5000/v2/"
    assert pod["spec"]["nodeSelector"] == edge_pod(render())["nodeSelector"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "helm-test"


def test_the_generated_peers_secret_is_the_same_on_every_render_without_a_cluster():
    values = {"peers": {"enabled": True}, "s3Credentials": {"accessKey": "a", "secretKey": "bucket-secret"}}
    first, second = (find(render(values), "Secret", "edge-edge-mirror-peers")["stringData"]["secret"] for _ in range(2))
    assert first == second and len(first) >= 16 and "bucket-secret" not in first
    other = helm.Chart.load(CHART).render(values, name="edge", namespace="other")
    assert first not in str(other)


def test_the_readme_names_the_pod_security_level_the_chart_needs():
    spec = edge_pod(render())
    uses_host = any("hostPort" in port for port in spec["containers"][0]["ports"]) or spec["hostNetwork"]
    assert uses_host  # hostPort/hostNetwork and the root hostPath init containers are beyond "baseline"
    assert "pod-security.kubernetes.io/enforce=privileged" in README
