"""Memory under large fills and a large push, and a fleet of regions rolling out images with Zipf popularity."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any, Iterator

import httpx

from load.bench import MIB, Bench, percentile
from load.client import PullResult, new_client, pull
from tests.support.edge import EdgeMirror, s3_storage


def memory(bench: Bench) -> dict[str, Any]:
    """Peak RSS of an edge during four concurrent cold fills, and of another during one large push."""
    world, sizes = bench.world, bench.sizes
    digests = [bench.push_image(f"bench/memory-{index}", [sizes.memory_fill], seed=10 + index).layer_digests[0] for index in range(4)]
    filler = world.edge("memory-fills", world.emulator("memory-fills"))

    async def fill_all() -> None:
        async with new_client() as client:
            async def fetch(index: int, digest: str) -> None:
                async with client.stream("GET", f"{filler.url}/v2/bench/memory-{index}/blobs/{digest}") as response:
                    response.raise_for_status()
                    async for _ in response.aiter_raw(1 << 20):
                        pass

            await asyncio.gather(*(fetch(index, digest) for index, digest in enumerate(digests)))

    asyncio.run(fill_all())
    fills_peak = filler.peak_rss_bytes()
    bench.progress.step(f"memory: peak RSS during 4 fills of {sizes.memory_fill // MIB} MiB: {fills_peak / MIB:.0f} MiB")

    pusher = EdgeMirror(bench.workdir / "edges" / "memory-push", s3_storage(world.seaweed.endpoint, "registry")).start()
    try:
        push_peak = _push(pusher, sizes.memory_push)
    finally:
        pusher.stop()
    bench.progress.step(f"memory: peak RSS during a {sizes.memory_push // MIB} MiB push: {push_peak / MIB:.0f} MiB")
    return {
        "fill_bytes_each": sizes.memory_fill,
        "push_bytes": sizes.memory_push,
        "fills_peak_rss_mib": fills_peak / MIB,
        "push_peak_rss_mib": push_peak / MIB,
        "peak_rss_mib": max(fills_peak, push_peak) / MIB,
    }


def _push(edge: EdgeMirror, size: int) -> int:
    generator = random.Random(7)
    hasher = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for _ in range(size // MIB):
            chunk = generator.randbytes(MIB)
            hasher.update(chunk)
            yield chunk

    with httpx.Client(base_url=edge.url, timeout=600) as client:
        started = client.post("/v2/bench/pushed/blobs/uploads/")
        if started.status_code != 202:
            raise RuntimeError(f"the edge refused an upload: {started.status_code} {started.text[:200]}")
        location = started.headers["Location"]
        client.patch(location, content=body()).raise_for_status()
        client.put(f"{location}?digest=sha256:{hasher.hexdigest()}").raise_for_status()
    return edge.peak_rss_bytes()


def _zipf_choice(generator: random.Random, count: int, exponent: float = 1.1) -> int:
    weights = [1 / (rank + 1) ** exponent for rank in range(count)]
    return generator.choices(range(count), weights=weights)[0]


def fleet(bench: Bench) -> dict[str, Any]:
    """Regions of nodes pulling images with Zipf popularity in rolling waves: per region one edge, versus per
    region one registry:2 proxy of the central registry. Backend egress, hit ratio by bytes, pull latency."""
    world, sizes = bench.world, bench.sizes
    generator = random.Random(2026)
    image_sizes = [max(64 * 1024, int(sizes.fleet_max_layer / (1 + rank))) for rank in range(sizes.fleet_images)]
    images = [bench.push_image(f"bench/fleet-{index}", [size, 20_000], seed=100 + index) for index, size in enumerate(image_sizes)]
    bench.progress.step(f"fleet: {len(images)} images pushed")

    edge_links = [world.emulator(f"fleet-edge-{region}") for region in range(sizes.fleet_regions)]
    edges = [world.edge(f"fleet-{region}", link) for region, link in enumerate(edge_links)]
    central_link = world.emulator("fleet-central")
    central = world.central("fleet", central_link)
    proxies = [world.proxy(f"fleet-{region}", central) for region in range(sizes.fleet_regions)]

    plan = [
        [(region, _zipf_choice(generator, len(images))) for region in range(sizes.fleet_regions) for _ in range(sizes.fleet_nodes)]
        for _ in range(sizes.fleet_waves)
    ]

    def run(servers: list[str]) -> list[float]:
        async def waves() -> list[float]:
            times: list[float] = []
            async with new_client(connections=256) as client:
                gate = asyncio.Semaphore(32)

                async def node(region: int, image: int) -> PullResult:
                    async with gate:
                        return await pull(client, servers[region], f"bench/fleet-{image}", "v1")

                for wave in plan:
                    results = await asyncio.gather(*(node(region, image) for region, image in wave))
                    times.extend(result.seconds for result in results)
            return times

        return asyncio.run(waves())

    edge_times = run([edge.url for edge in edges])
    edge_egress = sum(link.bytes_served() for link in edge_links)
    bench.progress.step(f"fleet edge: egress {edge_egress / MIB:.0f} MiB, p99 {percentile(edge_times, 0.99):.2f} s")
    proxy_times = run([proxy.url for proxy in proxies])
    proxy_egress = central_link.bytes_served()
    bench.progress.step(f"fleet registry proxy: egress {proxy_egress / MIB:.0f} MiB, p99 {percentile(proxy_times, 0.99):.2f} s")

    served_cache = sum(edge.metrics().value("mirror_served_bytes_total", source="cache") for edge in edges)
    served_all = sum(edge.metrics().value("mirror_served_bytes_total") for edge in edges)
    return {
        "regions": sizes.fleet_regions,
        "nodes_per_region": sizes.fleet_nodes,
        "images": len(images),
        "waves": sizes.fleet_waves,
        "edge": {"egress_bytes": edge_egress, "p50_seconds": percentile(edge_times, 0.5), "p99_seconds": percentile(edge_times, 0.99),
                 "hit_ratio_by_bytes": served_cache / served_all if served_all else 0.0},
        "registry_proxy": {"egress_bytes": proxy_egress, "p50_seconds": percentile(proxy_times, 0.5),
                           "p99_seconds": percentile(proxy_times, 0.99)},
        "egress_ratio_vs_registry_proxy": edge_egress / proxy_egress if proxy_egress else 0.0,
        "p99_ratio_vs_registry_proxy": percentile(edge_times, 0.99) / percentile(proxy_times, 0.99),
    }
