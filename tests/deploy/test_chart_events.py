"""The chart's registry-events receiver: a Service per region over its edges, and the snippets NOTES.txt prints."""

from __future__ import annotations

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from mirror import config as mirror_config
from tests.deploy.conftest import CHART, edge_environ, find, render

TOKEN = "admin-token-of-24-chars!"
SERVICE = "edge-edge-mirror-events"
EVENTS = {"admin": {"enabled": True, "token": TOKEN}, "events": {"enabled": True}}


def notes(values: dict) -> str:
    manifests = helm.Chart.load(CHART).render(values, name="edge", namespace="edge-mirror")
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def test_events_are_off_by_default_with_no_receiver_service():
    assert [item for item in render() if item["metadata"]["name"] == SERVICE] == []
    assert "notifications:" not in notes({})


def test_events_enabled_render_a_receiver_service_over_the_region_edges():
    objects = render(EVENTS)
    service = find(objects, "Service", SERVICE)
    edges = find(objects, "Service", "edge-edge-mirror")
    assert service["spec"]["selector"] == edges["spec"]["selector"]
    assert service["spec"]["ports"][0]["port"] == edges["spec"]["ports"][0]["port"]
    assert "internalTrafficPolicy" not in service["spec"]  # the central registry is on no particular node
    kubernetes_validate.validate(service, "1.30", strict=True)


def test_notes_print_a_notifications_snippet_for_the_central_registry():
    text = notes({**EVENTS, "events": {"enabled": True, "service": {"port": 8080}}})
    snippet = yaml.safe_load(text[text.index("notifications:"):text.index("and into the edges")])
    (endpoint,) = snippet["notifications"]["endpoints"]
    assert endpoint["url"] == f"http://{SERVICE}.edge-mirror.svc:8080/admin/notifications"
    assert endpoint["headers"]["Authorization"] == ["Bearer <admin token>"]
    assert TOKEN not in text
    assert "[[notifications.endpoints]]" in text


def test_events_without_admin_are_refused():
    with pytest.raises(helm.HelmRenderError, match="admin.enabled"):
        render({"events": {"enabled": True}})


def test_events_enabled_lint_without_warnings():
    report = helm.lint(CHART, EVENTS, strict=True, kube_version="v1.30.0")
    assert report["errors"] == []
    assert [message for message in report["messages"] if message["severity"] >= 2] == []


def test_events_settings_and_a_notifications_block_in_config_reach_the_edge(tmp_path):
    values = {**EVENTS, "config": {
        "events": {"repositories": ["team/**"], "platforms": ["linux/amd64"]},
        "notifications": {"endpoints": [{"name": "region-b", "url": "http://events.b.example:5000/admin/notifications",
                                         "headers": {"Authorization": ["Bearer b-token"]}, "timeout": "2s"}]},
    }}
    objects = render(values)
    path = tmp_path / "mirror.toml"
    path.write_text(find(objects, "ConfigMap", "edge-edge-mirror")["data"]["mirror.toml"])
    settings = mirror_config.load(path, environ=edge_environ(objects))
    assert settings.events.repositories == ("team/**",)
    (endpoint,) = settings.notifications
    assert (endpoint.name, endpoint.timeout, endpoint.headers) == ("region-b", 2, (("Authorization", "Bearer b-token"),))
