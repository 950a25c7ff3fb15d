"""Cold scenarios: nothing cached anywhere, every byte crosses the emulated far link.

- `cold_pull`: one image (a big layer and a few small ones), pulled once from each contender with empty caches;
  wall time of the pull. Each round pulls a different image, so caches stay cold without restarting anything.
  Then the time to first byte of a cold blob GET (over `ttfb_probes` different blobs, one at a time) against
  the bare link's (a ranged S3 GET straight through an emulator of its own).
  A second edge with `fill.parallelism = 20` runs alongside (`edge_parallel20`).
  The ceiling, `bare_parallel`: each round's big layer read with as many parallel ranged GETs as the default
  edge's `fill.parallelism`, straight from SeaweedFS through an emulator of its own, bytes dropped (`bare.py`):
  what this machine moves with no edge at all. CPU seconds per GiB of every process in each chain (edge, its
  emulator, SeaweedFS, the harness's client) are measured around each pull, to show what limits the edge.
  `backend_bytes_ratio`: what the edge's link sent during each of its pulls over the image's bytes (the worst round).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from typing import Any

from load import bare, client
from load.procs import cpu_seconds
from load.bench import AGGREGATE_RATE, LINK, Bench, Sizes
from load.comparators import Comparators
from load.components import ACCESS_KEY, BUCKET, SECRET_KEY, Emulator
from load.measure import median, percentile, ratio
from mirror.config.loader import DEFAULTS

# A second edge with as many ranged GETs in flight as the link's aggregate cap holds per-connection caps
# (400 MB/s / 20 MB/s): what the [fill] parallelism setting alone can buy. The headline figures are the
# default edge's.
TUNED = "edge_parallel20"
TUNED_PARALLELISM = 20
CEILING = "bare_parallel"
GIB = 2**30


def _link_ttfb(emulator: Emulator, key: str, probes: int) -> list[float]:
    """Seconds to the first byte of a ranged S3 GET straight through an emulator: what the link itself costs."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=emulator.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                      region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    s3.head_bucket(Bucket=BUCKET)  # open the connection first, as the contenders' pools are
    times = []
    for _ in range(probes):
        started = time.perf_counter()
        body = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-1023")["Body"]
        body.read(1)
        times.append(time.perf_counter() - started)
        body.close()
    return times


async def _cold_ttfb(url: str, name: str, blobs: list[Any]) -> list[float]:
    """Time to first byte of one cold blob GET at a time, each blob a different one (so each is a miss)."""
    async with client.new_session() as session:
        await (await session.get(f"{url}/v2/")).release()  # open the connection, as a runtime has one already
        return [(await client.fetch_blob(session, f"{url}/v2/{name}/blobs/{blob.digest}", blob.digest)).ttfb for blob in blobs]


def cold_shape(sizes: Sizes) -> list[int]:
    """The layer sizes of the cold_pull images (the memory scenario fills their big layers too)."""
    return [sizes.cold_layer, *sizes.small_layers]


def _expected_link_ttfb(samples: list[float]) -> float:
    """The bare link's mean TTFB without sampling noise: the emulator's expected delay (its distribution is
    known) plus what the S3 server and client add on their own (the fastest probe minus the fast delay)."""
    fast, slow, fraction = LINK["ttfb_fast_ms"] / 1000, LINK["ttfb_slow_ms"] / 1000, LINK["slow_fraction"]
    return (1 - fraction) * fast + fraction * slow + max(0.0, min(samples) - fast)


def _blob_key(digest: str) -> str:
    hex_digest = digest.split(":", 1)[1]
    return f"docker/registry/v2/blobs/sha256/{hex_digest[:2]}/{hex_digest}/data"


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process; "client" is this (the harness's) process."""
    return {**{name: cpu_seconds(pid) for name, pid in pids.items()}, "client": time.process_time()}


def _per_gib(before: dict[str, float], after: dict[str, float], moved: int) -> dict[str, float]:
    return {name: (after[name] - before[name]) / moved * GIB for name in before}


def _last_seconds(runs: list[dict[str, Any]], index: int) -> str:
    return f"{runs[-1]['seconds']:.2f}s" if runs and runs[-1]["round"] == index else "failed"


def _fmt_seconds(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}s"


def _by_size(urls: dict[str, str], others: Comparators, name: str, ceiling: Any) -> dict[str, Any]:
    """One one-layer image pulled cold by the edge and registry:2 direct, and read bare (`ceiling()`); a
    comparator that fails leaves its time and the ratios that need it blank."""
    async def one_layer(url: str) -> float:
        async with client.new_session() as session:
            return (await client.pull(session, url, name, "v1")).seconds

    times: dict[str, Any] = {"edge": asyncio.run(one_layer(urls["edge"]))}
    times["registry_direct"] = asyncio.run(others.run("registry_direct", lambda: one_layer(urls["registry_direct"])))
    read = others.call(CEILING, ceiling)
    times[CEILING] = read["seconds"] if read else None
    direct, bare_seconds = times["registry_direct"] or math.nan, times[CEILING] or math.nan
    return {**times, "speedup_vs_registry_direct": ratio(direct, times["edge"]),
            "edge_over_ceiling": ratio(times["edge"], bare_seconds),
            # the most any edge could reach here: registry:2's pull against the bare layer read
            "ceiling_speedup_vs_registry_direct": ratio(direct, bare_seconds)}


def cold_pull(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    shape = cold_shape(sizes)
    rounds = bench.images([(f"bench/cold-{index}", shape, 200 + index, None) for index in range(sizes.repeats)]
                          + [("bench/ttfb", [sizes.ttfb_blob] * sizes.ttfb_probes, 290, None)])[:-1]
    ttfb_image = bench.image("bench/ttfb", [sizes.ttfb_blob] * sizes.ttfb_probes, seed=290)
    bench.progress.step(f"{len(rounds)} images of {rounds[0].total_bytes / 2**20:.0f} MiB pushed")
    by_size = bench.images([(f"bench/cold-size-{size}", [size], 250 + index, None) for index, size in enumerate(sizes.cold_sizes)])
    contenders = ["edge", TUNED, "registry_direct", "registry_proxy"]
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    layer_sizes: dict[str, dict[str, float]] = {}
    streams = int(sizes.edge_fill.get("parallelism", DEFAULTS["fill"]["parallelism"]))
    ceiling: list[dict[str, Any]] = []
    cpu: list[dict[str, float]] = []
    link_bytes: list[float] = []  # what the edge's link sent for each of its pulls, over the image's bytes
    with bench.scope():
        edge, edge_link = bench.edge("cold")
        tuned, _ = bench.edge("cold-tuned", parallelism=TUNED_PARALLELISM)
        direct, _ = bench.central("cold-direct")
        proxy, _ = bench.proxy("cold")
        probe = bench.emulator("cold-probe")
        bare_link = bench.emulator("cold-bare")
        edge_pids = {"edge": edge.process.pid, "emulator": edge_link.process.pid, "seaweedfs": bench.seaweed.process.pid}
        bare_pids = {"emulator": bare_link.process.pid, "seaweedfs": bench.seaweed.process.pid}

        def bare_read(blob: Any) -> dict[str, Any]:
            before = _cpu(bare_pids)
            seconds = asyncio.run(bare.parallel_get(bare_link.endpoint, _blob_key(blob.digest), blob.size, streams))
            return {"seconds": seconds, "bytes": blob.size, "cpu_seconds_per_gib": _per_gib(before, _cpu(bare_pids), blob.size)}
        urls = {"edge": edge.url, TUNED: tuned.url, "registry_direct": direct.url, "registry_proxy": proxy.url}
        others = Comparators({TUNED: tuned.process, "registry_direct": direct.process, "registry_proxy": proxy.process},
                             log=bench.progress.step)
        link_ttfb = _link_ttfb(probe, _blob_key(rounds[0].layers[0].digest), sizes.ttfb_probes)
        link_expected = _expected_link_ttfb(link_ttfb)

        async def pull(name: str, index: int) -> client.PullResult:
            async with client.new_session() as session:
                return await client.pull(session, urls[name], f"bench/cold-{index}", "v1")

        async def run() -> None:
            for index, image in enumerate(rounds):
                order = contenders[index % len(contenders):] + contenders[: index % len(contenders)]
                for name in order:
                    before = _cpu(edge_pids)
                    if name == "edge":  # the subject: never retried, its failure is the scenario's
                        sent = edge_link.bytes_down()
                        result: client.PullResult | None = await pull(name, index)
                        cpu.append(_per_gib(before, _cpu(edge_pids), result.bytes))
                        link_bytes.append((edge_link.bytes_down() - sent) / image.total_bytes)
                    else:
                        result = await others.run(name, lambda: pull(name, index))
                    if result is None:
                        continue
                    big = result.largest
                    raw[name].append({"seconds": result.seconds, "bytes": result.bytes, "manifest_seconds": result.manifest_seconds,
                                      "big_blob_ttfb": big.ttfb, "big_blob_seconds": big.seconds, "big_blob_bytes": big.bytes,
                                      "round": index})
                bench.progress.step(f"round {index + 1}/{len(rounds)}: " + ", ".join(
                    f"{name} {_last_seconds(raw[name], index)}" for name in contenders)
                    + f"; edge CPU {cpu[-1]['edge']:.2f} s/GiB")

        asyncio.run(run())
        for image in rounds:
            read = others.call(CEILING, lambda: bare_read(max(image.layers, key=lambda layer: layer.size)))
            if read is not None:
                ceiling.append(read)
                bench.progress.step(f"{CEILING} ({streams} GETs): {read['seconds']:.2f}s for the big layer")

        for size, image in zip(sizes.cold_sizes, by_size):
            layer_sizes[f"{size // 2**20}MiB"] = _by_size(urls, others, f"bench/cold-size-{size}", lambda: bare_read(image.layers[0]))
            bench.progress.step(f"{size // 2**20}MiB layer: " + ", ".join(
                f"{name} {_fmt_seconds(layer_sizes[f'{size // 2**20}MiB'].get(name))}" for name in ("edge", "registry_direct", CEILING)))
        probed = [name for name in contenders if name != TUNED]

        async def probe_one(name: str) -> list[float] | None:
            attempt = lambda: _cold_ttfb(urls[name], "bench/ttfb", ttfb_image.layers)  # noqa: E731
            return await attempt() if name == "edge" else await others.run(name, attempt)

        async def all_probes() -> list[list[float] | None]:  # side by side: each contender has its own link
            return list(await asyncio.gather(*(probe_one(name) for name in probed)))

        probes = {name: values for name, values in zip(probed, asyncio.run(all_probes())) if values is not None}
        bench.progress.step(f"cold blob TTFB, mean of {sizes.ttfb_probes}: " + ", ".join(
            f"{name} {statistics.fmean(values) * 1000:.0f} ms" for name, values in probes.items())
            + f", bare link {link_expected * 1000:.0f} ms expected ({statistics.fmean(link_ttfb) * 1000:.0f} ms sampled)")
        edge_fill = edge.fill
    seconds = {name: median([r["seconds"] for r in runs]) for name, runs in raw.items()}
    ttfb = {name: statistics.fmean(values) for name, values in probes.items()}
    throughput = {name: median([r["big_blob_bytes"] / r["big_blob_seconds"] for r in runs]) for name, runs in raw.items()}
    ceiling_seconds = median([run["seconds"] for run in ceiling])
    big_seconds = median([r["big_blob_seconds"] for r in raw["edge"]])
    edge_cpu = {name: median([sample[name] for sample in cpu]) for name in cpu[0]}
    bare_cpu = {name: median([run["cpu_seconds_per_gib"][name] for run in ceiling]) for name in [*bare_pids, "client"]}
    return {
        # A comparator that failed (after the retries a user would make) has blank figures and its reasons here.
        **others.summary(),
        "image_bytes": rounds[0].total_bytes,
        "big_layer_bytes": sizes.cold_layer,
        "edge_fill": edge_fill,
        "seconds": seconds,
        "cold_blob_ttfb_seconds": ttfb,  # means
        "cold_blob_ttfb_samples": probes,
        "cold_blob_bytes": sizes.ttfb_blob,
        "big_blob_ttfb_in_pull_seconds": {name: median([r["big_blob_ttfb"] for r in runs]) for name, runs in raw.items()},
        "big_blob_bytes_per_second": throughput,
        "link_ttfb_seconds": link_expected,
        "link_ttfb_sampled_mean_seconds": statistics.fmean(link_ttfb),
        "link_ttfb_samples": link_ttfb,
        "aggregate_cap_bytes_per_second": AGGREGATE_RATE,
        "runs": raw,
        "by_layer_size": layer_sizes,  # one-layer images, edge vs registry:2 direct
        "speedup_vs_registry_direct": ratio(seconds["registry_direct"], seconds["edge"]),
        "speedup_vs_registry_proxy": ratio(seconds["registry_proxy"], seconds["edge"]),
        # Means, not medians: TTFB is bimodal (80/400 ms) and the edge's cold GET waits on two draws at once
        # (link check and first part), so a median flips between ~0 and ~300 ms on a few samples, while the
        # mean is the expected extra wait per cold blob. The link's side is its exact expectation.
        "ttfb_excess_ms": (ttfb["edge"] - link_expected) * 1000,
        "ttfb_excess_median_ms": (median(probes["edge"]) - median(link_ttfb)) * 1000,
        "ttfb_excess_p25_ms": (percentile(probes["edge"], 0.25) - percentile(link_ttfb, 0.25)) * 1000,
        "link_utilisation": throughput["edge"] / AGGREGATE_RATE,
        # The ceiling: the big layer alone, `streams` ranged GETs with no edge (see the module docstring).
        "ceiling_streams": streams,
        "ceiling_seconds": ceiling_seconds,
        "ceiling_link_utilisation": sizes.cold_layer / ceiling_seconds / AGGREGATE_RATE,
        "edge_over_ceiling": ratio(big_seconds, ceiling_seconds),  # the edge's big-blob GET time / the ceiling's
        CEILING: {"runs": ceiling, "cpu_seconds_per_gib": bare_cpu},
        # CPU seconds per GiB pulled of each process in the edge's chain (medians over rounds; "client" is the
        # harness, which hashes every byte); what 2 cores can carry is 2 / their sum GiB/s.
        "edge_cpu_seconds_per_gib": edge_cpu["edge"],
        "edge_chain_cpu_seconds_per_gib": edge_cpu,
        "edge_cpu_samples": cpu,
        # What the bucket sent through the edge's link for each cold pull, over the image's bytes (issue 23 goal 6:
        # ~1x under any arrival pattern; a GET cut short loses what was in flight on it).
        "backend_bytes_ratio": max(link_bytes),
        "backend_bytes_ratio_by_round": link_bytes,
        TUNED: {
            "fill_parallelism": TUNED_PARALLELISM,
            "speedup_vs_registry_direct": ratio(seconds["registry_direct"], seconds[TUNED]),
            "speedup_vs_registry_proxy": ratio(seconds["registry_proxy"], seconds[TUNED]),
            "link_utilisation": throughput[TUNED] / AGGREGATE_RATE,
        },
    }
