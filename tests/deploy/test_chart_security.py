"""Item 5 of the fleet review: what the chart exposes by default, rendered by real Helm and read by the edge's own
config loader (addresses) or checked against the Kubernetes schemas (NetworkPolicy)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from mirror import config as mirror_config
from tests.deploy.conftest import edge_environ, find, render

DAEMONSET = "edge-edge-mirror"


def edge_settings(objects: list[dict[str, Any]], tmp_path) -> mirror_config.Config:
    (tmp_path / "mirror.toml").write_text(find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"])
    return mirror_config.load(tmp_path / "mirror.toml", environ=edge_environ(objects))


def edge_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "DaemonSet", DAEMONSET)["spec"]["template"]["spec"]["containers"][0]


def rules_by_port(policy: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            rules.setdefault(port["port"], []).extend(rule["from"])
    return rules


def test_by_default_no_other_node_or_pod_reaches_the_registry_api():
    policy = find(render(), "NetworkPolicy", DAEMONSET)
    kubernetes_validate.validate(policy, "1.30", strict=True)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    # The API port: only the own node (always allowed by NetworkPolicy) and this release's `helm test` pod.
    assert rules_by_port(policy)["http"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/instance": "edge", "app.kubernetes.io/component": "helm-test"}}}]
    assert set(rules_by_port(find(render({"tests": {"enabled": False}}), "NetworkPolicy", DAEMONSET))) == {"metrics"}
    assert all(rule.get("from") for rule in policy["spec"]["ingress"])  # an empty `from` would allow everyone


def test_the_monitoring_namespace_may_scrape_the_metrics_port_only():
    rules = rules_by_port(find(render({"networkPolicy": {"allowedCIDRs": ["10.20.0.0/16"]}, "tests": {"enabled": False}}),
                               "NetworkPolicy", DAEMONSET))
    assert rules["metrics"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert rules["http"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_metrics_are_served_on_their_own_port_which_is_no_host_port(tmp_path):
    objects = render({"metrics": {"serviceMonitor": {"enabled": True}}})
    settings = edge_settings(objects, tmp_path)
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 5000)
    assert settings.http.metrics_addr == ("0.0.0.0", 5001)
    ports = {port["name"]: port for port in edge_container(objects)["ports"]}
    assert ports["metrics"] == {"name": "metrics", "containerPort": 5001, "protocol": "TCP"}
    assert find(objects, "ServiceMonitor", DAEMONSET)["spec"]["endpoints"][0]["port"] == "metrics"
    pod_monitor = find(render({"metrics": {"podMonitor": {"enabled": True}}}), "PodMonitor", DAEMONSET)
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_an_http_addr_set_by_the_user_is_kept(tmp_path):
    values = {"config": {"http": {"addr": "127.0.0.1:5000", "metrics_addr": "127.0.0.1:9102"}}}
    settings = edge_settings(render(values), tmp_path)
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 5000)
    assert settings.http.metrics_addr == ("127.0.0.1", 9102)
    env = edge_environ(render({**values, "hostNetwork": True}))
    assert "MIRROR_HTTP_ADDR" not in env and "MIRROR_HTTP_METRICS_ADDR" not in env


def test_host_ip_limits_the_host_port_to_one_node_address():
    ports = {port["name"]: port for port in edge_container(render({"hostIP": "127.0.0.1"}))["ports"]}
    assert ports["http"]["hostIP"] == "127.0.0.1" and ports["http"]["hostPort"] == 5000
    assert "hostIP" not in {port["name"]: port for port in edge_container(render())["ports"]}["http"]
