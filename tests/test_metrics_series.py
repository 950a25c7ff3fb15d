"""Every labelled metric declares its label combinations in `mirror.metrics`, and a fresh edge exports every one
of them at 0 before any request (so ``rate()`` and ``increase()`` see each first event)."""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from mirror import config, metrics
from mirror.api.app import known_labels
from tests.support.edge import EdgeMirror, filesystem_storage
from tests.support.ports import free_port

# What starting an edge does by itself: it probes the backend, and the test waits for /healthz.
STARTUP_SERIES = {
    ("mirror_backend_requests_total", (("op", "probe"), ("status", "ok"))),
}
STARTUP_ROUTES = {"healthz"}


def _labelled_metrics() -> list[MetricWrapperBase]:
    found = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    return [metric for metric in found if metric._labelnames]


def _sample_names(metric: MetricWrapperBase) -> list[str]:
    name = metric._name
    if isinstance(metric, Counter):
        return [f"{name}_total"]
    if isinstance(metric, Histogram):
        return [f"{name}_count", f"{name}_sum"]
    assert isinstance(metric, Gauge), metric
    return [name]


def test_every_labelled_metric_declares_its_label_values():
    labelled = _labelled_metrics()
    assert len(labelled) >= 15
    undeclared = [metric._name for metric in labelled if metric not in metrics.DECLARED]
    assert undeclared == []
    registered = set(metrics.REGISTRY._collector_to_names)  # nothing labelled hides outside the module's names
    assert {metric for metric in registered if isinstance(metric, MetricWrapperBase) and metric._labelnames} == set(labelled)


def test_fresh_edge_exports_every_declared_series_at_zero(tmp_path: Path):
    (tmp_path / "root").mkdir()
    route = {"ns": "hub", "url": f"http://127.0.0.1:{free_port()}", "prefix": "hub"}
    edge = EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "root"), upstream=[route], admin={"enabled": True, "token": "t" * 32})
    with edge:
        scraped = edge.metrics()
        settings = config.load(edge.config_path, environ={})
    expected = metrics.series(known_labels(settings))
    assert expected[metrics.remote_bytes] == [("hub",)]
    assert any(route == "stats" for _, route, _ in expected[metrics.http_requests])
    missing, nonzero = [], []
    for metric, combinations in expected.items():
        for combination in combinations:
            labels = dict(zip(metric._labelnames, combination))
            for name in _sample_names(metric):
                found = [s for s in scraped.get(name, []) if s.labels == labels]
                if len(found) != 1:
                    missing.append((name, labels))
                    continue
                value = found[0].value
                started = (name, tuple(sorted(labels.items()))) in STARTUP_SERIES or labels.get("route") in STARTUP_ROUTES
                if metric is metrics.remote_ratelimit_remaining:
                    assert math.isnan(value), (name, labels, value)
                elif value != 0 and not started:
                    nonzero.append((name, labels, value))
    assert missing == []
    assert nonzero == []


def test_fresh_edge_exports_process_metrics(tmp_path: Path):
    (tmp_path / "root").mkdir()
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "root")) as edge:
        scraped = edge.metrics()
    assert scraped.value("process_resident_memory_bytes") > 10_000_000
    assert scraped.value("process_open_fds") >= 3
    assert scraped.value("process_cpu_seconds_total") > 0
    assert "python_gc_collections_total" in scraped
