"""The metrics' registry, the process collectors, and how label combinations are declared and created."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

# The *_created series double the exposition without telling an operator anything a restart counter doesn't.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client 0.2x leaves it unannotated

REGISTRY = CollectorRegistry(auto_describe=True)
# Resident memory, open fds, CPU seconds (process_*), the Python version (python_info) and GC counts (python_gc_*).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


@dataclass(frozen=True)
class Known:
    """Label values that come from the configuration: the HTTP routes served (name, methods) and the remote
    routes (their ``ns``)."""

    http_routes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    remote_routes: tuple[str, ...] = ()


Combinations = Callable[[Known], Iterable[tuple[str, ...]]]
# Every labelled metric -> every label combination it can take on an edge with `Known` config.
DECLARED: dict[MetricWrapperBase, Combinations] = {}
# Gauges whose declared series start at NaN ("not known yet"), not 0.
UNKNOWN_AT_START: set[Gauge] = set()

# Seconds, about log-spaced from 1 ms (a small blob filled over loopback) to 10 min (a large one over a slow link).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def product(*values: Iterable[str]) -> list[tuple[str, ...]]:
    return list(itertools.product(*values))


def declare(metric: MetricWrapperBase, combinations: Iterable[tuple[str, ...]] | Combinations) -> None:
    if callable(combinations):
        DECLARED[metric] = combinations
    else:
        fixed = [tuple(combination) for combination in combinations]
        DECLARED[metric] = lambda known: fixed


def series(known: Known) -> dict[MetricWrapperBase, list[tuple[str, ...]]]:
    """Every declared label combination of every labelled metric, for an edge with `known` config."""
    return {metric: list(combinations(known)) for metric, combinations in DECLARED.items()}


def start(known: Known = Known()) -> None:
    """Create every declared series (at 0; NaN for a gauge not known yet). Called at import for the label values
    the code knows, and by the app at start-up with the configured ones."""
    for metric, combinations in series(known).items():
        for combination in combinations:
            child = metric.labels(*combination)
            if isinstance(child, Gauge) and metric in UNKNOWN_AT_START:
                child.set(float("nan"))


def exposition() -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(REGISTRY)
