"""`fleet_peers`: one region of N nodes, an edge per node (a DaemonSet), sharing their caches or not.

The world and the rollout are the `fleet` scenario's (same catalogue, same seeded schedule, a quarter of the nodes
at a time), for one region of `fleet_nodes` nodes (quick 4, medium 8, full 20; ``--fleet-nodes``). Every node
pulls from its own edge process, and all the region's edges read the bucket through ONE emulated link, the region's
link to the bucket (LINK's latency and per-connection rate, `REGION_BANDWIDTH` in all).
Two contenders, one after the other with fresh caches:

- `isolated`: edges without ``[peers]`` (each node fills what it lacks from the bucket);
- `sharing`: the same edges listing each other in ``[peers]`` (the owner of a digest fills it, the rest read it
  from the owner).

Measured: the region's bucket egress (bytes through the link) and the p50/p99 pull times.

Simulated larger: the schedule is extended to `SIMULATED_NODES` nodes and both egresses are computed from it
without processes — isolated = Σ over nodes of the bytes of the distinct blobs that node pulls (every node fills
what it lacks); sharing = the bytes of the distinct blobs the region pulls (one owner fill per blob). The measured
runs give the factor between that ideal and reality (`egress_over_ideal`), which the simulation applies. Pull
times are not simulated: they depend on link contention, which only the measured runs show.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from load.bench import Bench
from load.components import Emulator
from load.measure import percentile, ratio
from load.procs import free_port
from load.scenarios_fleet import ZIPF_S, _built, rollout

SIMULATED_NODES = 200
# The region's link to the far bucket, shared by all its nodes: LINK's latency and per-connection rate, and an
# aggregate of about 1 Gbit/s (LINK's 400 MB/s is one node's view of the gateway, not a region's uplink).
REGION_BANDWIDTH = "100MB"
SECRET = "bench-region-secret-0123456789"


def _schedule(bench: Bench, count: int, nodes: int) -> list[list[list[int]]]:
    """schedule[wave][node] = image indexes, Zipf-popular, seeded (the same for both contenders)."""
    sizes = bench.sizes
    rng = random.Random(1414)
    weights = [1 / (rank + 1) ** ZIPF_S for rank in range(count)]
    return [[rng.choices(range(count), weights, k=sizes.fleet_images_per_node) for _ in range(nodes)]
            for _ in range(sizes.fleet_waves)]


def _ideal_egress(schedule: list[list[list[int]]], blobs: list[dict[str, int]]) -> tuple[int, int]:
    """(isolated, sharing) bucket bytes if every fill were perfect: per node vs once per region."""
    nodes = len(schedule[0])
    per_node: list[dict[str, int]] = [{} for _ in range(nodes)]
    for wave in schedule:
        for node, wanted in enumerate(wave):
            for image in wanted:
                per_node[node].update(blobs[image])
    region: dict[str, int] = {}
    for held in per_node:
        region.update(held)
    return sum(sum(held.values()) for held in per_node), sum(region.values())


def _run(bench: Bench, sharing: bool, catalogue: list[tuple[str, int]], schedule: list[list[list[int]]]) -> dict[str, Any]:
    nodes = len(schedule[0])
    with bench.scope():
        link: Emulator = bench.emulator("region-link", aggregate_bandwidth=REGION_BANDWIDTH)
        ports = [free_port() for _ in range(nodes)]
        addresses = [f"127.0.0.1:{port}" for port in ports]
        peers = {"addresses": addresses, "secret": SECRET} if sharing else None
        with ThreadPoolExecutor(4) as pool:  # a few at a time: 20 interpreters importing at once crowd two cores
            edges = list(pool.map(lambda port: bench.region_edge("peers" if sharing else "isolated", link, port, peers), ports))
        log: list[dict[str, Any]] = []
        asyncio.run(rollout([edge.url for edge in edges], schedule, catalogue, log))
        egress = link.bytes_down()
        samples = [edge.metrics() for edge in edges]
    failures = [entry["failed"] for entry in log if "failed" in entry]
    if failures:
        raise RuntimeError(f"{len(failures)} pulls failed, first: {failures[0]}")
    times = [entry["seconds"] for entry in log]

    def total(prefix: str) -> float:
        return sum(value for sample in samples for key, value in sample.items() if key.startswith(prefix))

    return {
        "pulls": len(log), "bytes_received": sum(entry["bytes"] for entry in log), "egress_bytes": egress,
        "peer_bytes": total("mirror_peer_bytes_total"), "peer_fallbacks": total("mirror_peer_fallbacks_total"),
        "p50_seconds": percentile(times, 0.5), "p99_seconds": percentile(times, 0.99), "pull_seconds": times,
    }


def fleet_peers(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    built = _built(bench)
    catalogue = [(name, image.total_bytes) for name, image in built]
    blobs = [{blob.digest: blob.size for blob in image.blobs} for _, image in built]
    schedule = _schedule(bench, len(catalogue), sizes.fleet_nodes)
    bench.progress.step(f"one region of {sizes.fleet_nodes} nodes, an edge each, one link; {sizes.fleet_waves} waves")
    results: dict[str, Any] = {}
    for name, sharing in (("isolated", False), ("sharing", True)):
        results[name] = _run(bench, sharing, catalogue, schedule)
        row = results[name]
        bench.progress.step(f"{name}: {row['pulls']} pulls, region egress {row['egress_bytes'] / 2**20:.0f} MiB, "
                            f"p50 {row['p50_seconds']:.2f}s p99 {row['p99_seconds']:.2f}s")
    ideal_isolated, ideal_sharing = _ideal_egress(schedule, blobs)
    results["isolated"]["egress_over_ideal"] = ratio(results["isolated"]["egress_bytes"], ideal_isolated)
    results["sharing"]["egress_over_ideal"] = ratio(results["sharing"]["egress_bytes"], ideal_sharing)
    big = _schedule(bench, len(catalogue), SIMULATED_NODES)
    big_isolated, big_sharing = _ideal_egress(big, blobs)
    simulated = {
        "nodes": SIMULATED_NODES,
        "isolated_egress_bytes": big_isolated * results["isolated"]["egress_over_ideal"],
        "sharing_egress_bytes": big_sharing * results["sharing"]["egress_over_ideal"],
    }
    simulated["egress_ratio_sharing_vs_isolated"] = ratio(simulated["sharing_egress_bytes"], simulated["isolated_egress_bytes"])
    return {
        "nodes_per_region": sizes.fleet_nodes, "images": len(catalogue), "waves": sizes.fleet_waves, **results,
        "egress_ratio_sharing_vs_isolated": ratio(results["sharing"]["egress_bytes"], results["isolated"]["egress_bytes"]),
        "p99_ratio_sharing_vs_isolated": ratio(results["sharing"]["p99_seconds"], results["isolated"]["p99_seconds"]),
        "p50_ratio_sharing_vs_isolated": ratio(results["sharing"]["p50_seconds"], results["isolated"]["p50_seconds"]),
        "simulated": simulated,
    }
