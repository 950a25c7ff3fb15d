"""`fleet`: regions × nodes pulling images of mixed sizes with Zipf popularity during a rolling deployment.

The world: `fleet_images` images, each one shared base layer (as most images share a distro base) plus one or
two layers of their own with log-uniform sizes. Popularity is Zipf (s = 1.1) over the images.

The deployment: `fleet_waves` waves; in each wave every node is assigned `fleet_images_per_node` images drawn
by popularity, and each region rolls the wave out in batches of a quarter of its nodes (the nodes of a batch
pull at once; the next batch starts when the batch is done; regions run side by side). A node pulls only the
images it does not have yet, as a runtime does. The schedule is seeded: both contenders see the same one.

Per region, one node-local cache: the edge (its own link to the bucket), or the registry:2 proxy (whose
central registry:2 has its own link). Measured: total backend egress (bytes through the links), hit ratio by
bytes (1 − egress / bytes the nodes received) and the p50/p99 pull times.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

from load import client
from load.bench import Bench
from load.components import Emulator
from load.measure import percentile, ratio

ZIPF_S = 1.1


def _catalogue(bench: Bench) -> list[tuple[str, int]]:
    """Build and push the images; returns (name, total bytes) in popularity order."""
    return [(name, image.total_bytes) for name, image in _built(bench)]


def _built(bench: Bench) -> list[tuple[str, Any]]:
    """Build and push the images (once per run); returns (name, BuiltImage) in popularity order."""
    sizes = bench.sizes
    rng = random.Random(600)
    low, high = sizes.fleet_layer_range
    bases = [(900_000 + index, size) for index, size in enumerate(sizes.fleet_bases)]
    specs = []
    for index in range(sizes.fleet_images):
        own = [int(math.exp(rng.uniform(math.log(low), math.log(high)))) for _ in range(rng.choice((1, 2)))]
        specs.append((f"bench/fleet-{index}", own, 600 + index, [bases[index % len(bases)]]))
    return [(spec[0], image) for spec, image in zip(specs, bench.images(specs))]


def _schedule(bench: Bench, count: int) -> list[list[list[list[int]]]]:
    """schedule[wave][region][node] = the image indexes that node is asked to run in that wave."""
    sizes = bench.sizes
    rng = random.Random(601)
    weights = [1 / (rank + 1) ** ZIPF_S for rank in range(count)]
    return [[[rng.choices(range(count), weights, k=sizes.fleet_images_per_node) for _ in range(sizes.fleet_nodes)]
             for _ in range(sizes.fleet_regions)] for _ in range(sizes.fleet_waves)]


async def rollout(urls: list[str], waves: list[list[list[int]]], catalogue: list[tuple[str, int]],
                  log: list[dict[str, Any]]) -> None:
    """Roll every wave out over one region's nodes (node i pulls from ``urls[i]``), a quarter of them at a time.
    A pull the server fails is logged as failed and the node moves on: a reference peer's error is a result, not a
    harness failure."""
    nodes = len(urls)
    have: list[set[int]] = [set() for _ in range(nodes)]
    batch = max(1, nodes // 4)

    async def node(index: int, wanted: list[int]) -> None:
        async with client.new_session(connections=8) as session:
            for image in dict.fromkeys(wanted):
                if image in have[index]:
                    continue
                try:
                    result = await client.pull(session, urls[index], catalogue[image][0], "v1")
                except client.PullFailed as error:
                    log.append({"image": image, "failed": str(error)})
                    continue
                have[index].add(image)
                log.append({"image": image, "seconds": result.seconds, "bytes": result.bytes})

    for wave in waves:
        for first in range(0, nodes, batch):
            await asyncio.gather(*(node(i, wave[i]) for i in range(first, min(nodes, first + batch))))


def _run(bench: Bench, contender: str, catalogue: list[tuple[str, int]], schedule: list[list[list[list[int]]]]) -> dict[str, Any]:
    sizes = bench.sizes
    with bench.scope():
        servers: list[tuple[str, Emulator]] = []
        for region in range(sizes.fleet_regions):
            server, link = bench.edge(f"fleet-r{region}") if contender == "edge" else bench.proxy(f"fleet-r{region}")
            servers.append((server.url, link))
        logs: list[list[dict[str, Any]]] = [[] for _ in servers]

        async def everything() -> None:
            await asyncio.gather(*(
                rollout([url] * sizes.fleet_nodes, [wave[region] for wave in schedule], catalogue, logs[region])
                for region, (url, _) in enumerate(servers)
            ))

        asyncio.run(everything())
        egress = [link.bytes_down() for _, link in servers]
    failures = [entry["failed"] for log in logs for entry in log if "failed" in entry]
    if contender == "edge" and failures:
        raise RuntimeError(f"{len(failures)} pulls through the edge failed, first: {failures[0]}")
    pulls = [entry for log in logs for entry in log if "failed" not in entry]
    times = [entry["seconds"] for entry in pulls]
    received = sum(entry["bytes"] for entry in pulls)
    return {
        "pulls": len(pulls), "failed_pulls": len(failures), "failures": failures[:5], "bytes_received": received, "egress_bytes": sum(egress), "egress_bytes_by_region": egress,
        "hit_ratio_by_bytes": 1 - ratio(sum(egress), received),
        "p50_seconds": percentile(times, 0.5), "p99_seconds": percentile(times, 0.99), "pull_seconds": times,
    }


def fleet(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    catalogue = _catalogue(bench)
    schedule = _schedule(bench, len(catalogue))
    bench.progress.step(f"{len(catalogue)} images ({sum(size for _, size in catalogue) / 2**20:.0f} MiB) pushed; "
                        f"{sizes.fleet_regions} regions × {sizes.fleet_nodes} nodes, {sizes.fleet_waves} waves")
    results: dict[str, Any] = {}
    for contender in ("edge", "registry_proxy"):
        results[contender] = _run(bench, contender, catalogue, schedule)
        row = results[contender]
        bench.progress.step(f"{contender}: {row['pulls']} pulls ({row['failed_pulls']} failed), egress {row['egress_bytes'] / 2**20:.0f} MiB, "
                            f"hit ratio {row['hit_ratio_by_bytes']:.2f}, p50 {row['p50_seconds']:.2f}s p99 {row['p99_seconds']:.2f}s")
    unique = sorted({image for wave in schedule for region in wave for node in region for image in node})
    return {
        "regions": sizes.fleet_regions, "nodes_per_region": sizes.fleet_nodes, "images": len(catalogue),
        "waves": sizes.fleet_waves, "zipf_s": ZIPF_S, "images_pulled": len(unique),
        "catalogue_bytes": sum(size for _, size in catalogue),
        **results,
        "egress_ratio_vs_registry_proxy": ratio(results["edge"]["egress_bytes"], results["registry_proxy"]["egress_bytes"]),
        "p99_ratio_vs_registry_proxy": ratio(results["edge"]["p99_seconds"], results["registry_proxy"]["p99_seconds"]),
        "p50_ratio_vs_registry_proxy": ratio(results["edge"]["p50_seconds"], results["registry_proxy"]["p50_seconds"]),
    }
