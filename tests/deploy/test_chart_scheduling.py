"""Where the chart's pods go on a mixed fleet (issue 21, item 4): rendered by real Helm, its schema applied."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.deploy.conftest import CHART, REPO, find, load_values, render

DAEMONSETS = ("edge-edge-mirror", "edge-edge-mirror-restore")


def pod_spec(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return find(objects, "DaemonSet", name)["spec"]["template"]["spec"]


def required_expressions(spec: dict[str, Any]) -> list[dict[str, Any]]:
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 1
    return terms[0]["matchExpressions"]


@pytest.mark.parametrize("name", DAEMONSETS)
def test_pods_go_only_to_linux_nodes_of_the_images_architectures_and_never_to_virtual_nodes(name):
    spec = pod_spec(render(), name)
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert required_expressions(spec) == [
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
        {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]},
        {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["fargate"]},
    ]


def test_a_single_arch_image_keeps_its_pods_off_other_architectures():
    spec = pod_spec(render({"image": {"architectures": ["amd64"]}}), "edge-edge-mirror")
    assert required_expressions(spec)[0] == {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}


def test_a_region_files_node_selector_adds_to_the_linux_one():
    spec = pod_spec(render(load_values(REPO / "deploy/helm/regions/eu-central.yaml")), "edge-edge-mirror")
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "topology.kubernetes.io/region": "eu-central-1"}


def test_a_node_affinity_of_the_users_replaces_the_default_one():
    mine = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "edge-mirror", "operator": "In", "values": ["enabled"]}]}]}}}
    assert pod_spec(render({"affinity": mine}), "edge-edge-mirror")["affinity"] == mine


@pytest.mark.parametrize("objects", ["release", "hook"])
def test_a_system_priority_outside_kube_system_comes_with_the_quota_gke_requires(objects):
    rendered = render()
    name = "edge-edge-mirror-priority" + ("-restore" if objects == "hook" else "")
    quota = find(rendered, "ResourceQuota", name)
    assert quota["spec"]["scopeSelector"]["matchExpressions"] == [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["system-node-critical"]}]
    assert int(quota["spec"]["hard"]["pods"]) >= 5000
    if objects == "hook":
        assert quota["metadata"]["annotations"]["helm.sh/hook"] == "post-delete"
        hook_objects = [item for item in rendered
                        if item["metadata"].get("annotations", {}).get("helm.sh/hook") == "post-delete"]
        assert min(int(item["metadata"]["annotations"]["helm.sh/hook-weight"]) for item in hook_objects) == \
            int(quota["metadata"]["annotations"]["helm.sh/hook-weight"])  # before the restore DaemonSet


def test_no_quota_without_a_system_priority():
    objects = render({"priorityClassName": ""})
    assert not [item for item in objects if item["kind"] == "ResourceQuota"]
    assert "priorityClassName" not in pod_spec(objects, "edge-edge-mirror")


@pytest.mark.parametrize("surge", [1, "10%"])
def test_the_schema_refuses_a_max_surge_that_would_deadlock_on_the_host_port(surge):
    with pytest.raises(helm.HelmValuesError):
        helm.Chart.load(CHART).render({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": 1, "maxSurge": surge}}}, name="edge", namespace="edge-mirror")


@pytest.mark.parametrize("strategy", [{"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}},
                                      {"type": "OnDelete"}], ids=["percent-no-surge", "on-delete"])
def test_the_schema_accepts_rollouts_without_surge(strategy):
    daemonset = find(render({"updateStrategy": strategy}), "DaemonSet", "edge-edge-mirror")
    assert daemonset["spec"]["updateStrategy"] == strategy
