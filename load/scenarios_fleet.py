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

Simulated larger (`simulated`): SIMULATED_REGIONS × SIMULATED_NODES nodes, too many processes for this machine, by
the discrete-event model of `load/fleetsim.py`. Its inputs are measured in the real runs just made (per contender:
time to first byte and rate of cold and cached blob GETs, manifest times), its mechanics each contender's miss
behaviour read from its code (edge single flight; registry:2 proxy's store read plus one streamed read per miss
while the store runs, blobs cached per repository) and the link's aggregate rate. It is first played at the real run's size and compared with what was measured
(`simulated.validation`: the model's relative error), then on a seeded rollout of the same catalogue at the
larger size.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

from load import client, fleetpush, fleetsim
from load.bench import AGGREGATE_RATE, LINK, Bench
from load.components import Emulator
from load.measure import median, percentile, ratio

ZIPF_S = 1.1
SIMULATED_REGIONS = 10
SIMULATED_NODES = 200
# Assumption: a region's cache node sends at most 10 Gbit/s to its nodes (its NIC), whoever the contender is.
SERVE_RATE = 1.25e9
BEHAVIOURS = {"edge": fleetsim.EDGE, "registry_proxy": fleetsim.REGISTRY_PROXY}
# "push → warm" assumptions: registry:2's notification reaches each region this long after the push, and the
# rollout of the pushed image starts this long after it (a CI pipeline's deploy step).
EVENT_DELAY = 1.0
ROLLOUT_AT = 60.0


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
    return fleetsim.zipf_schedule(601, count, sizes.fleet_waves, sizes.fleet_regions, sizes.fleet_nodes,
                                  sizes.fleet_images_per_node, ZIPF_S)


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
                started = time.perf_counter()
                try:
                    result = await client.pull(session, urls[index], catalogue[image][0], "v1")
                except client.PullFailed as error:
                    log.append({"image": image, "failed": str(error)})
                    continue
                have[index].add(image)
                log.append({"image": image, "seconds": result.seconds, "bytes": result.bytes, "started": started,
                            "manifest_seconds": result.manifest_seconds, "blobs": result.blobs})

    for wave in waves:
        for first in range(0, nodes, batch):
            await asyncio.gather(*(node(i, wave[i]) for i in range(first, min(nodes, first + batch))))


def _run(bench: Bench, contender: str, catalogue: list[tuple[str, int]], schedule: fleetsim.Schedule,
         ) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    """One contender's real rollout: its figures, and every region's pull log (for calibrating the model)."""
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
    return ({
        "pulls": len(pulls), "failed_pulls": len(failures), "failures": failures[:5], "bytes_received": received, "egress_bytes": sum(egress), "egress_bytes_by_region": egress,
        "hit_ratio_by_bytes": 1 - ratio(sum(egress), received),
        "p50_seconds": percentile(times, 0.5), "p99_seconds": percentile(times, 0.99), "pull_seconds": times,
    }, logs)


def _calibrate(logs: list[list[dict[str, Any]]]) -> tuple[fleetsim.Calibration, dict[str, Any]]:
    """The model's inputs from one contender's real pulls (a blob GET starts when its pull's manifest is in)."""
    pulls = [[entry for entry in log if "failed" not in entry] for log in logs]
    regions = [[fleetsim.BlobFetch(blob.digest, blob.bytes, entry["started"] + entry["manifest_seconds"], blob.ttfb, blob.seconds)
                for entry in log for blob in entry["blobs"]] for log in pulls]
    calibration, counts = fleetsim.calibrate(regions, [entry["manifest_seconds"] for log in pulls for entry in log],
                                             LINK["ttfb_fast_ms"] / 1000)
    return calibration, {
        **counts, "fill_mb_per_second": calibration.fill_rate / 1e6, "hit_mb_per_second": calibration.hit_rate / 1e6,
        "miss_ttfb_p50_seconds": percentile(list(calibration.miss_ttfb), 0.5),
        "miss_ttfb_p90_seconds": percentile(list(calibration.miss_ttfb), 0.9),
        "hit_ttfb_p50_seconds": percentile(list(calibration.hit_ttfb), 0.5),
        "manifest_p50_seconds": percentile(list(calibration.manifest), 0.5),
    }


def _play(calibrations: dict[str, fleetsim.Calibration], images: list[list[fleetsim.Blob]],
          schedule: fleetsim.Schedule, seeds: int) -> dict[str, Any]:
    """Each contender's model outcome: medians over `seeds` plays (the draws of TTFB and manifest times)."""
    region = fleetsim.Region(link_rate=AGGREGATE_RATE, serve_rate=SERVE_RATE)
    played: dict[str, Any] = {}
    for name, calibration in calibrations.items():
        outcomes = [fleetsim.simulate(BEHAVIOURS[name], calibration, region, images, schedule, seed=seed) for seed in range(seeds)]
        played[name] = {"pulls": len(outcomes[0].pull_seconds), "plays": seeds,
                        "egress_bytes": median([outcome.egress for outcome in outcomes]),
                        "p50_seconds": median([percentile(outcome.pull_seconds, 0.5) for outcome in outcomes]),
                        "p99_seconds": median([percentile(outcome.pull_seconds, 0.99) for outcome in outcomes])}
    for key in ("egress", "p99", "p50"):
        unit = "bytes" if key == "egress" else "seconds"
        played[f"{key}_ratio_vs_registry_proxy"] = ratio(played["edge"][f"{key}_{unit}"], played["registry_proxy"][f"{key}_{unit}"])
    return played


def _error(model: float, measured: float) -> float:
    """The model's relative error: model / measured − 1."""
    return ratio(model, measured) - 1


def _simulated(bench: Bench, images: list[list[fleetsim.Blob]], schedule: fleetsim.Schedule,
               results: dict[str, Any], logs: dict[str, list[list[dict[str, Any]]]]) -> dict[str, Any]:
    """Calibrate on the real runs, check the model at their size, then play the larger fleet."""
    sizes = bench.sizes
    clock = time.monotonic()
    calibrations, inputs = {}, {}
    for name, contender_logs in logs.items():
        calibrations[name], inputs[name] = _calibrate(contender_logs)
    check = _play(calibrations, images, schedule, seeds=9)
    validation: dict[str, Any] = {"regions": sizes.fleet_regions, "nodes_per_region": sizes.fleet_nodes}
    for name in calibrations:
        validation[name] = {**check[name], **{f"{key}_error": _error(check[name][key], results[name][key])
                                              for key in ("egress_bytes", "p50_seconds", "p99_seconds")}}
    for key in ("egress", "p99", "p50"):
        validation[f"{key}_ratio_error"] = _error(check[f"{key}_ratio_vs_registry_proxy"], results[f"{key}_ratio_vs_registry_proxy"])
    big = fleetsim.zipf_schedule(601, len(images), sizes.fleet_waves, SIMULATED_REGIONS, SIMULATED_NODES,
                                 sizes.fleet_images_per_node, ZIPF_S)
    played = _play(calibrations, images, big, seeds=3)
    return {
        "regions": SIMULATED_REGIONS, "nodes_per_region": SIMULATED_NODES, "waves": sizes.fleet_waves, **played,
        "push_warm": _push_warm(calibrations["edge"], images[0]),
        "validation": validation, "inputs": inputs,
        "assumptions": {
            "link_bytes_per_second": AGGREGATE_RATE, "serve_bytes_per_second": SERVE_RATE, "cache": "no eviction (as the real run)",
            "miss_behaviour": {"edge": "single flight: one backend read per blob per region",
                               "registry_proxy": "first miss: a store read plus a streamed read; each miss while storing: its "
                                                 "own read; blobs cached per repository, in flight per digest"},
            "measured_inputs": "blob TTFB drawn from the real run's misses/hits; per-read rate after the first byte; manifest times",
        },
        "seconds": round(time.monotonic() - clock, 2),
    }


def _push_warm(calibration: fleetsim.Calibration, blobs: list[fleetsim.Blob]) -> dict[str, Any]:
    """A new image (the catalogue's most popular one's blobs) pushed, then rolled out to every simulated node:
    warmed by the registry event beforehand, against today's cold first pull."""
    region = fleetsim.Region(link_rate=AGGREGATE_RATE, serve_rate=SERVE_RATE)
    runs = {name: fleetpush.push_then_roll_out(calibration, region, blobs, SIMULATED_REGIONS, SIMULATED_NODES, delay, ROLLOUT_AT)
            for name, delay in (("warm", EVENT_DELAY), ("cold", None))}
    warm, cold = runs["warm"], runs["cold"]
    return {
        "image_bytes": sum(size for _, size in blobs), "event_delay_seconds": EVENT_DELAY, "rollout_at_seconds": ROLLOUT_AT,
        "every_region_holds_it_seconds": max(warm.warm_seconds_by_region),
        "bucket_bytes_by_region": warm.egress_by_region, "cold_bucket_bytes_by_region": cold.egress_by_region,
        "first_pull_p50_seconds": percentile(warm.pull_seconds, 0.5), "first_pull_p99_seconds": percentile(warm.pull_seconds, 0.99),
        "cold_first_pull_p50_seconds": percentile(cold.pull_seconds, 0.5),
        "cold_first_pull_p99_seconds": percentile(cold.pull_seconds, 0.99),
        "p99_ratio_warm_vs_cold": ratio(percentile(warm.pull_seconds, 0.99), percentile(cold.pull_seconds, 0.99)),
    }


def fleet(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    built = _built(bench)
    catalogue = [(name, image.total_bytes) for name, image in built]
    schedule = _schedule(bench, len(catalogue))
    bench.progress.step(f"{len(catalogue)} images ({sum(size for _, size in catalogue) / 2**20:.0f} MiB) pushed; "
                        f"{sizes.fleet_regions} regions × {sizes.fleet_nodes} nodes, {sizes.fleet_waves} waves")
    results: dict[str, Any] = {}
    logs: dict[str, list[list[dict[str, Any]]]] = {}
    for contender in ("edge", "registry_proxy"):
        results[contender], logs[contender] = _run(bench, contender, catalogue, schedule)
        row = results[contender]
        bench.progress.step(f"{contender}: {row['pulls']} pulls ({row['failed_pulls']} failed), egress {row['egress_bytes'] / 2**20:.0f} MiB, "
                            f"hit ratio {row['hit_ratio_by_bytes']:.2f}, p50 {row['p50_seconds']:.2f}s p99 {row['p99_seconds']:.2f}s")
    unique = sorted({image for wave in schedule for region in wave for node in region for image in node})
    figures = {
        "regions": sizes.fleet_regions, "nodes_per_region": sizes.fleet_nodes, "images": len(catalogue),
        "waves": sizes.fleet_waves, "zipf_s": ZIPF_S, "images_pulled": len(unique),
        "catalogue_bytes": sum(size for _, size in catalogue),
        **results,
        "egress_ratio_vs_registry_proxy": ratio(results["edge"]["egress_bytes"], results["registry_proxy"]["egress_bytes"]),
        "p99_ratio_vs_registry_proxy": ratio(results["edge"]["p99_seconds"], results["registry_proxy"]["p99_seconds"]),
        "p50_ratio_vs_registry_proxy": ratio(results["edge"]["p50_seconds"], results["registry_proxy"]["p50_seconds"]),
    }
    images = [[(blob.digest, blob.size) for blob in image.blobs] for _, image in built]
    figures["simulated"] = simulated = _simulated(bench, images, schedule, figures, logs)
    check = simulated["validation"]
    bench.progress.step(
        f"model at the real size: egress error edge {check['edge']['egress_bytes_error']:+.0%}, proxy "
        f"{check['registry_proxy']['egress_bytes_error']:+.0%}; p99 error edge {check['edge']['p99_seconds_error']:+.0%}, "
        f"proxy {check['registry_proxy']['p99_seconds_error']:+.0%}")
    bench.progress.step(
        f"simulated {SIMULATED_REGIONS} regions × {SIMULATED_NODES} nodes in {simulated['seconds']:.1f}s: egress ratio "
        f"{simulated['egress_ratio_vs_registry_proxy']:.2f}, p99 ratio {simulated['p99_ratio_vs_registry_proxy']:.2f} "
        f"(edge p99 {simulated['edge']['p99_seconds']:.2f}s, proxy {simulated['registry_proxy']['p99_seconds']:.2f}s)")
    push = simulated["push_warm"]
    bench.progress.step(
        f"push → warm: every region holds the image {push['every_region_holds_it_seconds']:.2f}s after the push, "
        f"{push['bucket_bytes_by_region'][0] / 2**20:.1f} MiB from the bucket per region; first pull p99 "
        f"{push['first_pull_p99_seconds']:.2f}s warm vs {push['cold_first_pull_p99_seconds']:.2f}s cold")
    return figures
