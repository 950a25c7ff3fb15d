"""What the chart does about an edge that is down, stalled or slow (issue 21, item 3; the pulls themselves are
timed with the real containerd in tests/e2e/test_containerd_edge_faults.py)."""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.deploy.conftest import find, render


def edge_container(values=None):
    return find(render(values), "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("repository", ["registry.example.com/edge-mirror", "example/edge-mirror"],
                         ids=["listed-registry", "docker-hub-short-name"])
def test_the_image_that_runs_the_edge_may_not_be_pulled_through_that_edge(repository):
    with pytest.raises(helm.HelmRenderError, match="imageThroughEdge"):
        render({"image": {"repository": repository}})


def test_pulling_the_edge_image_through_the_edge_is_an_explicit_choice():
    objects = render({"image": {"repository": "registry.example.com/edge-mirror"},
                      "nodeConfig": {"imageThroughEdge": True}})
    assert find(objects, "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]["containers"][0]["image"] \
        .startswith("registry.example.com/edge-mirror:")


def test_a_hung_edge_is_restarted_within_half_a_minute_so_its_port_refuses_instead_of_stalling():
    probe = edge_container()["livenessProbe"]
    assert probe["httpGet"]["path"] == "/healthz"
    assert probe["periodSeconds"] * probe["failureThreshold"] + probe["timeoutSeconds"] <= 35
    assert probe["timeoutSeconds"] <= 5


def test_a_slow_first_start_is_covered_by_the_startup_probe_not_killed_by_liveness():
    startup = edge_container({"startupSeconds": 300})["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
