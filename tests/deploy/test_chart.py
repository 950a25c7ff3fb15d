"""The Helm chart, linted and rendered by real Helm, every object checked against the Kubernetes schemas."""

from __future__ import annotations

import json
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest

from mirror import config as mirror_config
from tests.deploy.conftest import CHART, REGION_VALUES, REPO, VALUES_CASES, edge_environ, find, load_values, render

KUBE_VERSION = "1.30"
# Prometheus Operator kinds: not in the Kubernetes schemas, checked for shape here and by the dashboard test.
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("values_file", VALUES_CASES)
def test_chart_lints_without_warnings(values_file: Path | None):
    report = helm.lint(CHART, load_values(values_file), strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    assert [message for message in report["messages"] if message["severity"] >= 2] == []


@pytest.mark.parametrize("values_file", VALUES_CASES)
def test_every_rendered_object_is_valid_for_kubernetes(values_file: Path | None):
    objects = render(load_values(values_file))
    assert {item["kind"] for item in objects} >= {"DaemonSet", "ConfigMap", "Service"}
    for item in objects:
        if item["kind"] in OPERATOR_KINDS:
            assert item["apiVersion"] == "monitoring.coreos.com/v1"
            assert item["spec"]
            continue
        kubernetes_validate.validate(item, KUBE_VERSION, strict=True)


def test_a_broken_object_fails_the_kubernetes_validation():
    daemonset = find(render(), "DaemonSet", "edge-edge-mirror")
    daemonset["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = "five thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values_file", VALUES_CASES)
def test_the_rendered_toml_is_a_valid_edge_config_with_the_derived_cache_size(values_file: Path | None, tmp_path):
    values = load_values(values_file) or {}
    objects = render(values)
    config_map = find(objects, "ConfigMap", "edge-edge-mirror")
    (tmp_path / "mirror.toml").write_text(config_map["data"]["mirror.toml"])
    settings = mirror_config.load(tmp_path / "mirror.toml", environ=edge_environ(objects))
    cache = {"sizeGiB": 50, "usePercent": 90, **values.get("cache", {})}
    assert settings.cache.size == cache["sizeGiB"] * 1024**3 * cache["usePercent"] // 100
    assert str(settings.cache.dir) == "/var/cache/edge-mirror"
    assert settings.storage.driver == "s3"
    assert "secretkey" not in config_map["data"]["mirror.toml"]
    if values.get("peers", {}).get("enabled"):
        assert settings.peers.dns.startswith("edge-edge-mirror-peers.")
        assert settings.peers.self_address == "10.1.2.3:5000"


def test_defaults_run_one_locked_down_edge_per_node_on_its_node_ip():
    objects = render()
    pod = find(objects, "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]
    daemonset = find(objects, "DaemonSet", "edge-edge-mirror")
    edge = next(container for container in pod["containers"] if container["name"] == "edge")
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["enableServiceLinks"] is False
    assert pod["hostNetwork"] is False
    assert edge["ports"][0] == {"name": "http", "containerPort": 5000, "protocol": "TCP", "hostPort": 5000}
    assert edge["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert edge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert edge["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert edge["resources"]["requests"] and edge["resources"]["limits"]["memory"]
    cache = next(volume for volume in pod["volumes"] if volume["name"] == "cache")
    assert cache["emptyDir"]["sizeLimit"] == "50Gi"
    env = {item["name"]: item for item in edge["env"]}
    assert env["MIRROR_STORAGE_S3_SECRETKEY"]["valueFrom"]["secretKeyRef"]["name"] == "edge-edge-mirror-s3"


def test_host_network_region_binds_the_node_ip_and_uses_an_empty_dir_cache():
    values = load_values(REPO / "deploy/helm/regions/us-east.yaml")
    pod = find(render(values), "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]
    edge = next(container for container in pod["containers"] if container["name"] == "edge")
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "hostPort" not in edge["ports"][0]
    assert {"name": "MIRROR_HTTP_ADDR", "value": "[$(NODE_IP)]:5000"} in edge["env"]
    cache = next(volume for volume in pod["volumes"] if volume["name"] == "cache")
    assert cache == {"name": "cache", "emptyDir": {"sizeLimit": "80Gi"}}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "topology.kubernetes.io/region": "us-east-1"}
    assert any(volume["name"] == "auth" and volume["secret"]["secretName"] == "edge-mirror-auth" for volume in pod["volumes"])


def test_existing_s3_secret_is_used_and_no_secret_is_rendered():
    objects = render({"s3Credentials": {"existingSecret": "mine"}})
    assert [item for item in objects if item["kind"] == "Secret"] == []
    edge = find(objects, "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]["containers"][0]
    assert {item["valueFrom"]["secretKeyRef"]["name"] for item in edge["env"] if "valueFrom" in item and "secretKeyRef" in item["valueFrom"]} == {"mine"}


def test_two_region_files_select_disjoint_regions_and_their_own_gateways():
    regions = [load_values(path) for path in REGION_VALUES]
    assert len(regions) >= 2
    selected = [values["nodeSelector"]["topology.kubernetes.io/region"] for values in regions]
    endpoints = [values["config"]["storage"]["s3"]["regionendpoint"] for values in regions]
    assert len(set(selected)) == len(regions) and len(set(endpoints)) == len(regions)


@pytest.mark.parametrize(
    "values",
    [
        {"config": {"storage": {"s3": {"secretkey": "in-a-configmap"}}}},
        {"cache": {"type": "nfs"}},
        {"nodeConfig": {"registries": [{"host": "docker.io/library"}]}},
        {"hostPort": 70000},
    ],
    ids=["credentials-in-config", "unknown-cache-type", "registry-with-a-path", "port-out-of-range"],
)
def test_the_values_schema_refuses(values):
    with pytest.raises(helm.HelmValuesError):
        helm.Chart.load(CHART).render(values, name="edge", namespace="edge-mirror")


def test_both_monitors_at_once_are_refused_rather_than_scraping_twice():
    with pytest.raises(helm.HelmRenderError, match="enable one of them"):
        render({"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}})


def test_the_dashboard_config_map_carries_the_shipped_dashboard():
    config_map = find(render(), "ConfigMap", "edge-edge-mirror-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((REPO / "deploy/grafana/edge-mirror.json").read_text())
    assert json.loads(config_map["data"]["edge-mirror.json"]) == shipped


def test_the_restore_hook_runs_on_every_node_and_helm_waits_for_it():
    objects = render()
    hook = find(objects, "DaemonSet", "edge-edge-mirror-restore")
    script = find(objects, "ConfigMap", "edge-edge-mirror-restore")
    wait = find(objects, "Pod", "edge-edge-mirror-restore-wait")
    rbac = [find(objects, kind, "edge-edge-mirror-restore-wait") for kind in ("ServiceAccount", "Role", "RoleBinding")]
    for item in (hook, script, wait, *rbac):
        assert item["metadata"]["annotations"]["helm.sh/hook"] == "post-delete"
        # Deleted on failure too: no root hostPath DaemonSet outlives the release.
        assert item["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == \
            "before-hook-creation,hook-succeeded,hook-failed"
    weights = [int(item["metadata"]["annotations"]["helm.sh/hook-weight"]) for item in (script, *rbac, hook, wait)]
    assert weights == sorted(weights) and weights[-1] > weights[-2]  # the wait pod comes last
    pod = hook["spec"]["template"]["spec"]
    assert pod["tolerations"][0] == {"operator": "Exists"}
    assert pod["initContainers"][0]["command"][-2:] == ["restore", "--all"]
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["port"] == "done"  # ready = restored
    command = wait["spec"]["containers"][0]["command"]
    assert command[2] == "wait" and command[command.index("--daemonset") + 1] == hook["metadata"]["name"]
    assert wait["spec"]["serviceAccountName"] == "edge-edge-mirror-restore-wait"
    assert rbac[1]["rules"] == [{"apiGroups": ["apps"], "resources": ["daemonsets"],
                                 "resourceNames": [hook["metadata"]["name"]], "verbs": ["get"]}]
    for name in ("node-config.py", "containerd_config.py", "restore_wait.py"):
        assert script["data"][name] == (CHART / "files" / name).read_text()


def test_with_node_config_disabled_the_init_container_puts_back_what_an_earlier_release_wrote():
    pod = find(render({"nodeConfig": {"enabled": False}}), "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]
    assert [container["name"] for container in pod["initContainers"]] == ["node-config-restore"]
    assert pod["initContainers"][0]["command"][-2:] == ["restore", "--all"]
    untouched = find(render({"nodeConfig": {"enabled": False, "restoreWhenDisabled": False}}), "DaemonSet",
                     "edge-edge-mirror")["spec"]["template"]["spec"]
    assert "host-containerd" not in {volume["name"] for volume in untouched["volumes"]}
