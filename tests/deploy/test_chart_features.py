"""The chart's remote upstream routes, admin endpoint and regional peers: rendered by real Helm, the edge's part
loaded by the edge's own config loader with the environment the kubelet would give it."""

from __future__ import annotations

import tomllib
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from mirror import config as mirror_config
from tests.deploy.conftest import CHART, REPO, edge_environ, find, load_values, render

KUBE_VERSION = "1.30"
DAEMONSET = "edge-edge-mirror"
TOKEN = "admin-token-of-24-chars!"
UPSTREAMS = [
    {"ns": "docker.io", "url": "https://registry-1.docker.io", "prefix": "dockerhub", "default": True,
     "username": "hub-user", "password": "hub-password"},
    {"ns": "ghcr.io", "url": "https://ghcr.io", "prefix": "ghcr", "tag_ttl": "5m", "existingSecret": "ghcr-pull"},
    {"ns": "quay.io", "url": "https://quay.io", "prefix": "quay", "allowed_networks": ["10.20.0.0/16"]},
]
# Chart-made Secrets everywhere, on the host network: the other half of what eu-central.yaml (existing Secrets) shows.
FEATURES = {"upstreams": UPSTREAMS, "admin": {"enabled": True, "token": TOKEN}, "peers": {"enabled": True},
            "networkPolicy": {"enabled": True}, "hostNetwork": True}
# The Secrets an operator made beforehand (existingSecret), as the kubelet would read them.
EXISTING = {("ghcr-pull", "username"): "gh-user", ("ghcr-pull", "password"): "gh-token"}


def edge_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "DaemonSet", DAEMONSET)["spec"]["template"]["spec"]["containers"][0]


def load_edge_config(objects: list[dict[str, Any]], tmp_path) -> mirror_config.Config:
    path = tmp_path / "mirror.toml"
    path.write_text(find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"])
    return mirror_config.load(path, environ=edge_environ(objects, EXISTING))


def node_registries(args: list[str]) -> list[str]:
    return [args[index + 1] for index, arg in enumerate(args) if arg == "--registry"]


@pytest.mark.parametrize("values", [FEATURES, load_values(REPO / "deploy/helm/regions/eu-central.yaml")],
                         ids=["chart-secrets", "eu-central"])
def test_upstreams_admin_and_peers_lint_and_validate_for_kubernetes(values):
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    for item in render(values):
        if item["kind"] not in {"ServiceMonitor", "PodMonitor", "PrometheusRule"}:
            kubernetes_validate.validate(item, KUBE_VERSION, strict=True)


def test_upstream_routes_reach_the_edge_with_their_credentials_from_secrets(tmp_path):
    settings = load_edge_config(render({"upstreams": UPSTREAMS}), tmp_path)
    routes = {route.ns: route for route in settings.upstreams}
    assert [route.ns for route in settings.upstreams] == ["docker.io", "ghcr.io", "quay.io"]
    assert routes["docker.io"].default and routes["docker.io"].prefix == "dockerhub"
    assert (routes["docker.io"].username, routes["docker.io"].password) == ("hub-user", "hub-password")
    assert (routes["ghcr.io"].username, routes["ghcr.io"].password) == ("gh-user", "gh-token")
    assert routes["ghcr.io"].tag_ttl == 300
    assert (routes["quay.io"].username, routes["quay.io"].password) == ("", "")


def test_an_upstream_routes_allowed_networks_reach_the_edge(tmp_path):
    settings = load_edge_config(render({"upstreams": UPSTREAMS}), tmp_path)
    routes = {route.ns: route for route in settings.upstreams}
    assert [str(network) for network in routes["quay.io"].allowed_networks] == ["10.20.0.0/16"]
    assert list(routes["docker.io"].allowed_networks) == []


def test_upstream_credentials_never_reach_the_config_map():
    objects = render({"upstreams": UPSTREAMS})
    toml = find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"]
    assert "hub-user" not in toml and "hub-password" not in toml and "ghcr-pull" not in toml
    assert "username" not in toml and "password" not in toml
    assert find(objects, "Secret", "edge-edge-mirror-upstreams")["stringData"] == {
        "0-username": "hub-user", "0-password": "hub-password"}


def test_node_config_points_containerd_at_the_edge_for_each_upstream_ns_once():
    objects = render({"upstreams": UPSTREAMS})
    init = find(objects, "DaemonSet", DAEMONSET)["spec"]["template"]["spec"]["initContainers"]
    args = next(container for container in init if container["name"] == "node-config")["args"]
    assert node_registries(args) == ["docker.io=https://registry-1.docker.io", "registry.example.com",
                                     "ghcr.io=https://ghcr.io", "quay.io=https://quay.io"]
    restore = find(objects, "DaemonSet", "edge-edge-mirror-restore")["spec"]["template"]["spec"]["initContainers"][0]
    assert node_registries(restore["args"]) == node_registries(args)


def test_node_config_upstreams_off_keeps_only_the_listed_registries():
    objects = render({"upstreams": UPSTREAMS, "nodeConfig": {"upstreams": False}})
    init = find(objects, "DaemonSet", DAEMONSET)["spec"]["template"]["spec"]["initContainers"]
    args = next(container for container in init if container["name"] == "node-config")["args"]
    assert node_registries(args) == ["docker.io=https://registry-1.docker.io", "registry.example.com"]


def test_admin_is_off_by_default_with_no_token_anywhere(tmp_path):
    objects = render()
    assert not load_edge_config(objects, tmp_path).admin.enabled
    assert "MIRROR_ADMIN_TOKEN" not in {item["name"] for item in edge_container(objects)["env"]}
    assert [item for item in objects if item["kind"] == "Secret" and item["metadata"]["name"].endswith("-admin")] == []


def test_admin_enabled_takes_its_token_from_a_secret(tmp_path):
    objects = render({"admin": {"enabled": True, "token": TOKEN}})
    settings = load_edge_config(objects, tmp_path)
    assert settings.admin.enabled and settings.admin.token == TOKEN
    assert TOKEN not in find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"]


def test_admin_enabled_with_an_existing_secret_renders_no_token_secret():
    objects = render({"admin": {"enabled": True, "existingSecret": "ops-token", "tokenKey": "bearer"}})
    ref = next(item for item in edge_container(objects)["env"] if item["name"] == "MIRROR_ADMIN_TOKEN")
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "ops-token", "key": "bearer"}
    assert [item for item in objects if item["kind"] == "Secret" and item["metadata"]["name"].endswith("-admin")] == []


def test_admin_enabled_without_a_token_is_refused():
    with pytest.raises(helm.HelmRenderError, match="admin.token"):
        render({"admin": {"enabled": True}})


def test_peers_are_off_by_default_with_no_section_service_or_secret():
    objects = render()
    assert "peers" not in tomllib.loads(find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"])
    assert [item["metadata"]["name"] for item in objects if item["metadata"]["name"].endswith("-peers")] == []
    assert not any(item["name"].startswith("MIRROR_PEERS_") for item in edge_container(objects)["env"])


def test_peers_dns_is_a_headless_service_over_the_ready_edge_pods():
    objects = render({"peers": {"enabled": True, "refresh": "20s"}})
    service = find(objects, "Service", "edge-edge-mirror-peers")
    daemonset = find(objects, "DaemonSet", DAEMONSET)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is False
    assert service["spec"]["selector"] == daemonset["spec"]["selector"]["matchLabels"]
    peers = tomllib.loads(find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"])["peers"]
    assert peers == {"dns": "edge-edge-mirror-peers.edge-mirror.svc", "port": 5000, "refresh": "20s", "timeout": "3s"}
    assert service["spec"]["ports"][0]["port"] == edge_container(objects)["ports"][0]["containerPort"] == peers["port"]


def test_peers_announce_the_pod_ip_and_sign_with_a_generated_secret():
    objects = render({"peers": {"enabled": True}})
    env = {item["name"]: item for item in edge_container(objects)["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["MIRROR_PEERS_SELF"]["value"] == "[$(POD_IP)]:5000"  # brackets for either family
    ref = env["MIRROR_PEERS_SECRET"]["valueFrom"]["secretKeyRef"]
    secret = find(objects, "Secret", ref["name"])["stringData"][ref["key"]]
    assert len(secret) >= 16
    assert secret not in find(objects, "ConfigMap", DAEMONSET)["data"]["mirror.toml"]


def test_peers_with_an_existing_secret_and_ipv6_pods():
    objects = render({"peers": {"enabled": True, "existingSecret": "region-peers", "secretKey": "hmac", "ipv6": True},
                      "port": 5005})
    env = {item["name"]: item for item in edge_container(objects)["env"]}
    assert env["MIRROR_PEERS_SELF"]["value"] == "[$(POD_IP)]:5005"
    assert env["MIRROR_PEERS_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "region-peers", "key": "hmac"}
    assert [item for item in objects if item["kind"] == "Secret" and item["metadata"]["name"].endswith("-peers")] == []


def test_network_policy_admits_the_release_edges_only_when_peers_are_enabled():
    def sources(values: dict[str, Any]) -> list[dict[str, Any]]:
        policy = find(render({"networkPolicy": {"enabled": True}, **values}), "NetworkPolicy", DAEMONSET)
        return policy["spec"]["ingress"][0]["from"]

    edges = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "edge-mirror", "app.kubernetes.io/instance": "edge"}}}
    assert edges in sources({"peers": {"enabled": True}})
    assert edges not in sources({})


@pytest.mark.parametrize(
    "values",
    [
        {"config": {"upstream": [{"ns": "docker.io"}]}},
        {"config": {"admin": {"enabled": True, "token": TOKEN}}},
        {"config": {"peers": {"secret": "x" * 20}}},
        {"upstreams": [{"ns": "docker.io", "prefix": "dockerhub"}]},
        {"upstreams": [{**UPSTREAMS[0], "password": None}]},
        {"upstreams": [{"ns": "docker.io/library", "url": "https://registry-1.docker.io", "prefix": "hub"}]},
        {"peers": {"enabled": True, "secret": "too-short"}},
        {"peers": {"enabled": True, "refresh": "soon"}},
    ],
    ids=["upstream-in-config", "admin-token-in-config", "peers-secret-in-config", "upstream-without-url",
         "username-without-password", "ns-with-a-path", "short-peers-secret", "unparsable-refresh"],
)
def test_the_values_schema_refuses(values):
    with pytest.raises(helm.HelmValuesError):
        helm.Chart.load(CHART).render(values, name="edge", namespace="edge-mirror")
