"""Every PromQL expression of the dashboard and the alert rules parses, and every metric they query is what a
running edge exports after a pull."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import CHART, REPO

DASHBOARD = REPO / "deploy" / "grafana" / "edge-mirror.json"
ALERTS = CHART / "files" / "alerts.yaml"
# Labels Prometheus adds to every scraped series (the chart's monitors add node and region).
TARGET_LABELS = {"region", "node", "namespace", "pod", "instance", "job", "le"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Series the alerts read that an edge does not export: the scrape's own, and kube-state-metrics' for the DaemonSet.
NOT_FROM_THE_EDGE = {"up", "kube_daemonset_status_number_unavailable"}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions() -> list[str]:
    """Panel queries, and the series selectors inside the template variables' ``label_values(...)``."""
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in _panels(dashboard["panels"]) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            expressions.append(match.group(1))
    return expressions


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def as_promql(expression: str) -> str:
    """Grafana's variables as Prometheus sees them once Grafana has substituted them."""
    return (
        expression.replace("$__rate_interval", "5m").replace("$region", ".*").replace("$node", ".*").replace("$job", ".*")
    )


def selectors(expression: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names used) for every series selector and the grouping labels around it."""
    found: list[tuple[str, set[str]]] = []
    grouping: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, {matcher.name for matcher in node.matchers.matchers}))

    promql_parser.walk(promql_parser.parse(as_promql(expression)), visit)
    return [(name, labels | grouping) for name, labels in found]


EXPRESSIONS = [pytest.param(expr, id=f"dashboard-{i}") for i, expr in enumerate(dashboard_expressions())] + [
    pytest.param(expr, id=f"alert-{i}") for i, expr in enumerate(alert_expressions())
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_expression_parses_as_promql(expression: str):
    assert promql_parser.parse(as_promql(expression)) is not None


def test_a_broken_expression_does_not_parse():
    with pytest.raises(ValueError):
        promql_parser.parse(as_promql('sum(rate(mirror_served_bytes_total{node=~"$node"}[$__rate_interval])'))


def test_the_dashboard_covers_what_operators_ask_for():
    queried = {name for expression in dashboard_expressions() for name, _ in selectors(expression)}
    assert {
        "mirror_cache_requests_total", "mirror_served_bytes_total", "mirror_backend_bytes_total",
        "mirror_fill_duration_seconds_bucket", "mirror_fill_waiters_total", "mirror_cache_evictions_total",
        "mirror_cache_size_bytes", "mirror_auth_requests_total", "mirror_http_requests_total",
        # issue 20: edges up, connections, memory; uncached fills, hedges; disk bytes; pushes; remotes; peers.
        "up", "mirror_open_connections", "mirror_rejected_connections_total", "process_resident_memory_bytes",
        "process_open_fds", "mirror_fill_uncached_total", "mirror_fill_hedges_total", "mirror_cache_disk_free_bytes",
        "mirror_uploads_total", "mirror_backend_written_bytes_total", "mirror_remote_requests_total",
        "mirror_remote_ratelimit_remaining", "mirror_remote_stale_total", "mirror_writebacks_total",
        "mirror_peer_served_requests_total", "mirror_peer_requests_total", "mirror_peer_fallbacks_total",
    } <= queried
    variables = {variable["name"] for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert {"region", "node", "job"} <= variables


def _incident_section() -> list[list[str]]:
    """The cells of the tables in the README's "In an incident: which panel, which alert" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("### In an incident: which panel, which alert", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")]


def test_every_panel_the_readme_sends_an_operator_to_is_on_the_dashboard():
    titles = {panel.get("title") for panel in _panels(json.loads(DASHBOARD.read_text())["panels"])}
    named = {name for row in _incident_section() if len(row) == 3 and row[0].endswith("?")
             for name in re.findall(r"\*([^*]+)\*", row[1])}
    assert named, "the README's incident table names no panel"
    assert sorted(named - titles) == []


def test_every_alert_is_explained_in_the_readme():
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    explained = {match for row in _incident_section() for match in re.findall(r"^`(\w+)`", row[0])}
    assert alerts and sorted(alerts ^ explained) == []


def _family_of(sample_name: str, families: dict[str, Any]) -> Any:
    for name in (sample_name, *(sample_name.removesuffix(suffix) for suffix in ("_total", *HISTOGRAM_SUFFIXES))):
        if name in families:
            return families[name]
    return None


def test_every_queried_metric_and_label_is_exported_by_an_edge_after_a_pull(pulled_edge):
    edge, _ = pulled_edge
    families = {family.name: family for family in text_string_to_metric_families(edge.metrics().text)}
    missing, bad_labels = [], []
    for expression in dashboard_expressions() + alert_expressions():
        for name, labels in selectors(expression):
            if name in NOT_FROM_THE_EDGE:
                continue
            family = _family_of(name, families)
            if family is None:
                missing.append(name)
                continue
            exported_labels = {label for sample in family.samples for label in sample.labels}
            if family.samples and not labels - TARGET_LABELS <= exported_labels:
                bad_labels.append((name, sorted(labels - TARGET_LABELS - exported_labels)))
    assert missing == []
    assert bad_labels == []


def test_the_pull_produced_the_series_the_hit_ratio_panels_divide(pulled_edge):
    edge, _ = pulled_edge
    metrics = edge.metrics()
    assert metrics.value("mirror_cache_requests_total", kind="blob", result="hit") > 0
    assert metrics.value("mirror_cache_requests_total", kind="blob", result="miss") > 0
    assert metrics.value("mirror_served_bytes_total", source="cache") > 0
    assert metrics.value("mirror_fill_duration_seconds_count") > 0
    assert 0 < metrics.value("mirror_cache_disk_free_bytes") <= metrics.value("mirror_cache_disk_total_bytes")
    assert metrics.value("mirror_cache_capacity_bytes") > 0
