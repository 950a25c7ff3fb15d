"""Cold scenarios: nothing cached anywhere; every contender reads the bucket through its own emulated link."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import boto3
from botocore.config import Config

from load.bench import MIB, Bench, median, percentile
from load.client import PullResult, new_client, pull
from load.components import BUCKET, Emulator
from tests.support import layout_keys

SMALL_LAYERS = [300_000, 2 * MIB, 40_000]


def _pull_once(url: str, name: str) -> PullResult:
    async def run() -> PullResult:
        async with new_client() as client:
            return await pull(client, url, name, "v1")

    return asyncio.run(run())


def _pull_many(url: str, name: str, count: int) -> list[PullResult]:
    async def run() -> list[PullResult]:
        async with new_client(connections=count * 4) as client:
            return await asyncio.gather(*(pull(client, url, name, "v1") for _ in range(count)))

    return asyncio.run(run())


def link_ttfb(emulator: Emulator, key: str, samples: int = 5) -> float:
    """Median time to the first byte of a 1-byte ranged GET straight through the emulator: the link's own TTFB."""
    client = boto3.client(
        "s3", endpoint_url=emulator.endpoint, aws_access_key_id="x", aws_secret_access_key="y",
        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}),
    )
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        client.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-0")["Body"].read()
        times.append(time.perf_counter() - started)
    return median(times)


def cold_pull(bench: Bench) -> dict[str, Any]:
    """Full pull of an image with one large layer from cold caches: edge, registry:2 direct, registry:2 proxy."""
    world, sizes = bench.world, bench.sizes
    image = bench.push_image("bench/cold", [sizes.cold_layer, *SMALL_LAYERS], seed=3)
    image_bytes = sum(image.layer_sizes) + len(image.manifest_bytes)
    edge_link = world.emulator("cold-edge")
    contenders = {
        "edge": world.edge("cold", edge_link).url,
        "registry_direct": world.central("cold-direct", world.emulator("cold-direct")).url,
        "registry_proxy": world.proxy("cold", world.central("cold-proxied", world.emulator("cold-proxied"))).url,
    }
    results: dict[str, PullResult] = {}
    for name, url in contenders.items():
        results[name] = _pull_once(url, "bench/cold")
        bench.progress.step(f"cold_pull {name}: {results[name].seconds:.1f} s, first byte of the large layer "
                            f"after {results[name].largest_blob_ttfb * 1000:.0f} ms")
    baseline_ttfb = link_ttfb(world.emulator("cold-ttfb"), layout_keys.blob_data(image.layer_digests[0]))
    edge = results["edge"]
    throughput = image_bytes / edge.seconds
    return {
        "image_bytes": image_bytes,
        "seconds": {name: result.seconds for name, result in results.items()},
        "largest_blob_ttfb_ms": {name: result.largest_blob_ttfb * 1000 for name, result in results.items()},
        "link_ttfb_ms": baseline_ttfb * 1000,
        "speedup_vs_registry_direct": results["registry_direct"].seconds / edge.seconds,
        "speedup_vs_registry_proxy": results["registry_proxy"].seconds / edge.seconds,
        "ttfb_excess_ms": (edge.largest_blob_ttfb - baseline_ttfb) * 1000,
        "edge_throughput_bytes_per_second": throughput,
        "link_utilisation": throughput / bench.link_rate,
    }


def herd(bench: Bench) -> dict[str, Any]:
    """Many concurrent cold pulls of one image on one node: backend bytes per image byte, and tail latency."""
    world, sizes = bench.world, bench.sizes
    image = bench.push_image("bench/herd", [sizes.herd_layer, *SMALL_LAYERS], seed=4)
    image_bytes = sum(image.layer_sizes) + len(image.manifest_bytes)

    single_edge = world.edge("herd-single", world.emulator("herd-single"))
    single = _pull_once(single_edge.url, "bench/herd").seconds
    world.release(single_edge)

    outcome: dict[str, Any] = {"pulls": sizes.herd_pulls, "image_bytes": image_bytes, "single_seconds": single}
    edge_link = world.emulator("herd-edge")
    proxy_link = world.emulator("herd-proxy")
    contenders = {
        "edge": (world.edge("herd", edge_link).url, edge_link),
        "registry_proxy": (world.proxy("herd", world.central("herd", proxy_link)).url, proxy_link),
    }
    for name, (url, link) in contenders.items():
        before = link.bytes_served()
        times = [result.seconds for result in _pull_many(url, "bench/herd", sizes.herd_pulls)]
        backend = link.bytes_served() - before
        outcome[name] = {
            "backend_bytes": backend,
            "backend_bytes_ratio": backend / image_bytes,
            "p50_seconds": percentile(times, 0.5),
            "p99_seconds": percentile(times, 0.99),
        }
        bench.progress.step(f"herd {name}: backend bytes {backend / image_bytes:.2f}× the image, "
                            f"p99 {outcome[name]['p99_seconds']:.1f} s")
    outcome["backend_bytes_ratio"] = outcome["edge"]["backend_bytes_ratio"]
    outcome["p99_over_single"] = outcome["edge"]["p99_seconds"] / single
    return outcome
