"""The shipped dashboard read through a real Prometheus (Debian's, 1 s scrape) over a region of two edges, scraped
with the target labels the chart's ServiceMonitor adds: an image pushed through edge A, pulled cold then warm
through edge B (with peers on, B's misses of A's digests are read from A), then some 404s, a Range, a 416, a
refused DELETE and a remote registry's 404. Every panel query, with Grafana's variables substituted, must return
data within the first minute after the edges start, and the client panels must count client traffic only."""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from mirror.peers.ownership import owner
from tests.conftest import BUCKET
from tests.deploy.conftest import find, render
from tests.deploy.test_alert_rules import rendered_rules
from tests.deploy.test_dashboard_metrics import DASHBOARD, _panels
from tests.support import images, skopeo
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.ports import free_port
from tests.support.prometheus import Prometheus
from tests.support.registry2 import Registry2
from tests.support.remote_token import RATELIMIT_REMAINING, CountingProxy

REGION = "e2e"
NAMESPACE = "edge-mirror"
NODES = ("node-a", "node-b")
SECRET = "region-secret-for-the-dashboard-test"
FIRST_MINUTE = 60.0
# What Grafana puts in for $__rate_interval at a 1 s scrape is 4 s; a little more keeps a few samples in each window.
RATE_INTERVAL = "10s"


@dataclass
class Region:
    prometheus: Prometheus
    edges: list[EdgeMirror]
    image: images.BuiltImage
    started: float  # wall clock when both edges answered /healthz
    before_cold: float
    after_warm: float  # wall clock once Prometheus has scraped everything the warm pull served
    before_side: float  # wall clock before the 404s, Range, 416, refused DELETE and remote request


def monitor_target_labels(node: str, pod: str) -> tuple[str, dict[str, str]]:
    """The job and target labels a target gets from the chart's ServiceMonitor (release "edge", region REGION):
    its relabelings (node from the pod's node, region), plus the operator's job (the Service), namespace, pod."""
    objects = render({"metrics": {"serviceMonitor": {"enabled": True}}, "region": REGION})
    monitor = find(objects, "ServiceMonitor", "edge-edge-mirror")
    meta = {"__meta_kubernetes_pod_node_name": node}
    labels = {"namespace": NAMESPACE, "pod": pod}
    for relabeling in monitor["spec"]["endpoints"][0]["relabelings"]:
        sources = relabeling.get("sourceLabels")
        labels[relabeling["targetLabel"]] = meta[sources[0]] if sources else relabeling["replacement"]
    service = find(objects, "Service", monitor["metadata"]["name"])
    return service["metadata"]["name"], labels


def ports_sharing(image: images.BuiltImage) -> list[int]:
    """Two free ports for which edge A owns the largest layer and edge B some other blob: B's cold pull reads most
    of its bytes from A, so bytes A sends its peer, if counted as client bytes, move the hit ratio well off 0.5."""
    largest = image.layer_digests[image.layer_sizes.index(max(image.layer_sizes))]
    for _ in range(100):
        ports = [free_port(), free_port()]
        addresses = [f"127.0.0.1:{port}" for port in ports]
        owners = [owner(digest, addresses) for digest in (image.config_digest, *image.layer_digests)]
        if owner(largest, addresses) == addresses[0] and addresses[1] in owners:
            return ports
    raise AssertionError("no port pair gives edge A the largest layer")


def served_total(edge: EdgeMirror) -> float:
    metrics = edge.metrics()
    return sum(metrics.value("mirror_served_bytes_total", source=source) for source in ("cache", "fill"))


def side_events(edge: EdgeMirror, image: images.BuiltImage) -> None:
    """404s, a Range, a 416, a refused DELETE, and a manifest asked of the remote route (the remote has none)."""
    layer = image.layer_digests[0]
    with httpx.Client(base_url=edge.url, timeout=30, trust_env=False) as client:
        for tag in ("missing-1", "missing-2"):
            assert client.get(f"/v2/e2e/app/manifests/{tag}").status_code == 404
        assert client.get(f"/v2/e2e/app/blobs/{layer}", headers={"Range": "bytes=0-99"}).status_code == 206
        beyond = f"bytes={image.layer_sizes[0] + 10}-"
        assert client.get(f"/v2/e2e/app/blobs/{layer}", headers={"Range": beyond}).status_code == 416
        assert client.delete(f"/v2/e2e/app/manifests/{image.manifest_digest}").status_code in (401, 403)
        assert client.get("/v2/library/nothing/manifests/v1", params={"ns": "remote.test"}).status_code == 404


def scrape_after(prometheus: Prometheus, moment: float) -> None:
    """Wait until Prometheus holds a scrape of every edge taken after `moment` (wall clock)."""
    prometheus.wait_for("min(timestamp(mirror_backend_up))", lambda values: min(values.values(), default=0) > moment,
                        timeout=30)


def wait_until_filled(edge: EdgeMirror, count: int, timeout: float = 60) -> None:
    """Every blob of the cold pull committed on `edge`, so the warm pull reads cache files only."""
    deadline = time.monotonic() + timeout
    while edge.metrics().value("mirror_fills_total", result="ok") < count:
        assert time.monotonic() < deadline, edge.log_tail()
        time.sleep(0.1)


@contextlib.contextmanager
def observed_region(work: Path, seaweed: Any, peers: bool) -> Iterator[Region]:
    """Prometheus over two edges (sharing their caches if `peers`), after the push, the pulls and the side events."""
    image = images.build_image(work / "app", "v1", [1_500_000, 700_000, 400_000], seed=2020)
    remote = Registry2.filesystem(work / "remote-fs", workdir=work / "remote")
    proxy = CountingProxy(remote.host)  # adds the ratelimit-remaining header Docker Hub sends
    ports = ports_sharing(image)
    sharing = {"peers": {"secret": SECRET, "addresses": [f"127.0.0.1:{port}" for port in ports], "timeout": "10s"}}
    edges = [
        EdgeMirror(
            work / node, s3_storage(seaweed.endpoint, BUCKET), port=port, auth={"anonymous": ["pull", "push"]},
            upstream=[{"ns": "remote.test", "url": proxy.url, "prefix": "remote", "tag_ttl": "10m"}],
            fill={"prefetch": False},  # the cold pull misses every blob (a prefetched layer would be a hit)
            **(sharing if peers else {}),
        )
        for node, port in zip(NODES, ports)
    ]
    static_configs = []
    for index, (node, edge) in enumerate(zip(NODES, edges)):
        job, labels = monitor_target_labels(node, f"edge-edge-mirror-{index}")
        static_configs.append({"targets": [edge.host], "labels": labels})
    rules = work / "rules.yaml"  # the chart's PrometheusRule, which names this job and namespace
    rules.write_text(yaml.safe_dump(rendered_rules(), sort_keys=False))
    prometheus = Prometheus(work / "prometheus", [{"job_name": job, "static_configs": static_configs}], [rules])
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda edge: edge.start(timeout=120), edges))
        started = time.time()
        # An operator's Prometheus has scraped each edge (its counters at 0) before its first pull: so does this one
        # (Prometheus scrapes a new target only a few seconds after it starts, and the pulls below take less).
        prometheus.wait_for("count by (node) (mirror_backend_up)", lambda values: len(values) == 2, timeout=30)
        a, b = edges
        skopeo.push(image.layout_dir, "v1", f"{a.host}/e2e/app:v1")
        # The push's blob HEADs are client lookups too: the windows below start once a scrape holds them, and a
        # scrape at that start is taken before the cold pull starts.
        scrape_after(prometheus, time.time())
        before_cold = time.time()
        scrape_after(prometheus, before_cold)
        skopeo.pull(f"{b.host}/e2e/app:v1", work / "cold")
        wait_until_filled(b, 1 + len(image.layer_digests))
        skopeo.pull(f"{b.host}/e2e/app:v1", work / "warm")
        served = served_total(a) + served_total(b)
        prometheus.wait_for("sum(mirror_served_bytes_total)", lambda values: served in values.values(), timeout=30)
        # Every edge scraped after the pulls, not only the one whose bytes were awaited above: A's answers to B
        # (peer bytes) are in A's next scrape, which on a busy machine may come after B's.
        scrape_after(prometheus, time.time())
        after_warm = time.time()
        before_side = time.time()
        side_events(b, image)
        yield Region(prometheus, edges, image, started, before_cold, after_warm, before_side)
    finally:
        for edge in edges:
            edge.stop()
        prometheus.stop()
        proxy.stop()
        remote.stop()


@pytest.fixture(scope="module")
def region(seaweed: Any, registry_s3: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    with observed_region(tmp_path_factory.mktemp("dashboard-prometheus"), seaweed, peers=False) as observed:
        yield observed


@pytest.fixture(scope="module")
def peered_region(seaweed: Any, registry_s3: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    with observed_region(tmp_path_factory.mktemp("dashboard-prometheus-peers"), seaweed, peers=True) as observed:
        yield observed


def panel_queries() -> dict[str, str]:
    """"panel title / refId" -> expression, for every query of every panel."""
    dashboard = json.loads(Path(DASHBOARD).read_text())
    return {f"{panel['title']} / {target['refId']}": target["expr"]
            for panel in _panels(dashboard["panels"]) for target in panel.get("targets", [])}


def substitute(expression: str, rate_interval: str = RATE_INTERVAL, node: str = ".*") -> str:
    """Grafana's variables as it fills them in: $region and $node picked, $job from label_values, the window."""
    variables = {"$__rate_interval": rate_interval, "$region": REGION, "$node": node, "$job": "edge-edge-mirror"}
    for name, value in variables.items():
        expression = expression.replace(name, value)
    assert not re.search(r"\$\w", expression), expression
    return expression


def window_since(moment: float, until: float) -> str:
    """A range that, evaluated at `until`, starts exactly at `moment`."""
    return f"{math.floor((until - moment) * 1000)}ms"


def test_every_dashboard_query_returns_data_within_the_first_minute(region: Region):
    queries = {title: substitute(expr) for title, expr in panel_queries().items()}
    empty = dict(queries)
    deadline = region.started + FIRST_MINUTE
    while empty and time.time() < deadline:
        empty = {title: expr for title, expr in empty.items() if not region.prometheus.query(expr)}
        time.sleep(0.5)
    # Whatever is still empty: as Prometheus saw it at the end of the first minute.
    empty = {title: expr for title, expr in empty.items() if not region.prometheus.query(expr, at=deadline)}
    assert empty == {}


def hit_ratio_by_bytes(region: Region) -> list[float]:
    window = window_since(region.before_cold, region.after_warm)
    query = substitute(panel_queries()["Hit ratio by bytes / A"], window)
    return list(region.prometheus.values(query, at=region.after_warm).values())


def test_hit_ratio_by_bytes_reads_one_half_after_a_cold_then_a_warm_pull(region: Region):
    assert hit_ratio_by_bytes(region) == [pytest.approx(0.5, abs=0.05)]


def test_with_peers_hit_ratio_by_bytes_still_reads_one_half(peered_region: Region):
    assert hit_ratio_by_bytes(peered_region) == [pytest.approx(0.5, abs=0.05)]


def test_with_peers_the_client_panels_count_client_traffic_only(peered_region: Region):
    region = peered_region
    at, window = region.after_warm, window_since(region.before_cold, region.after_warm)
    queries = panel_queries()
    peer_served = region.prometheus.values('sum by (node) (mirror_peer_served_bytes_total)', at=at)
    assert peer_served[frozenset({("node", "node-a")})] > 0  # B's cold pull did read A's digests from A
    client_bytes = 2 * (region.image.config_size + sum(region.image.layer_sizes))
    served = region.prometheus.values("sum by (node) (mirror_served_bytes_total)", at=at)
    assert served == {frozenset({("node", "node-a")}): 0, frozenset({("node", "node-b")}): client_bytes}
    for title in ("Hit ratio by bytes per node / A", "Blob hit ratio by requests per node / A"):
        ratios = region.prometheus.values(substitute(queries[title], window, node="node-b"), at=at)
        assert list(ratios.values()) == [pytest.approx(0.5, abs=0.05)], title
    by_kind = region.prometheus.values(substitute(queries["Hit ratio by requests / A"], window), at=at)
    assert by_kind[frozenset({("kind", "blob")})] == pytest.approx(0.5, abs=0.05)  # A's answers to B not counted


def test_the_auth_denial_and_other_4xx_panels_show_the_refused_delete_and_the_416(region: Region):
    queries = panel_queries()
    window = window_since(region.before_side - 1, time.time() + 30)  # still covers them 15 s of polls later
    denials = substitute(queries["Auth denials / A"], window)
    other_4xx = substitute(queries["Errors by route / B"], window)
    region.prometheus.wait_for(denials, lambda values: sum(values.values()) > 0, timeout=15)
    by_route = region.prometheus.wait_for(other_4xx, lambda values: sum(values.values()) > 0, timeout=15)
    assert {dict(labels)["route"] for labels, value in by_route.items() if value > 0} == {"blob", "manifest"}


def test_the_remote_panels_show_the_remote_s_answer_and_its_rate_limit(region: Region):
    queries = panel_queries()
    window = window_since(region.before_side - 1, time.time() + 30)  # still covers them 15 s of polls later
    left = substitute(queries["Remote rate limit left / A"])
    assert region.prometheus.wait_for(left, lambda values: RATELIMIT_REMAINING in values.values(), timeout=15)
    requests = region.prometheus.values(substitute(queries["Remote requests by route / A"], window))
    assert requests[frozenset({("route", "remote.test"), ("status", "not_found")})] > 0


def test_the_alert_rules_evaluate_without_error_and_a_healthy_region_fires_none(region: Region):
    def evaluated() -> list[dict[str, Any]]:
        deadline = time.monotonic() + 15
        while True:
            rules = region.prometheus.rules()
            if all(rule["health"] != "unknown" for rule in rules) or time.monotonic() > deadline:
                return rules
            time.sleep(0.25)

    rules = evaluated()
    assert {rule["name"] for rule in rules} == {rule["alert"] for group in rendered_rules()["groups"]
                                               for rule in group["rules"]}
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
    assert [rule["name"] for rule in rules if rule["state"] == "firing"] == []
