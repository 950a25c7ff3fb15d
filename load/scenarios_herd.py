"""Herd scenario: many concurrent cold pulls of one image on one node.

- `herd`: backend bytes / image bytes and the p50/p99 pull times, against the median of a few single cold
  pulls of same-shaped images on the same node (taken first, one at a time, so the node's connection pool is
  as warm for them as for the herd).
"""

from __future__ import annotations

import asyncio
from typing import Any

from load import client
from load.bench import Bench
from load.components import Edge
from load.measure import median, percentile, ratio


async def _herd(url: str, name: str, pulls: int) -> list[float]:
    """`pulls` simultaneous pulls, each from its own client (its own connections, like separate nodes' runtimes)."""
    start = asyncio.Event()

    async def one() -> float:
        async with client.new_session(connections=8) as session:
            await start.wait()
            return (await client.pull(session, url, name, "v1")).seconds

    tasks = [asyncio.create_task(one()) for _ in range(pulls)]
    await asyncio.sleep(0.05)
    start.set()
    return list(await asyncio.gather(*tasks))


async def _single(url: str, name: str) -> float:
    async with client.new_session() as session:
        return (await client.pull(session, url, name, "v1")).seconds


def herd(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    shape = [sizes.herd_layer, *sizes.small_layers]
    results: dict[str, dict[str, Any]] = {}
    singles = max(2, sizes.repeats)
    contenders = ["edge", "registry_proxy"]
    bench.images([(f"bench/herd-single-{i}-{r}", shape, 300 + 10 * i + r, None) for i in range(2) for r in range(singles)]
                 + [(f"bench/herd-{i}", shape, 350 + i, None) for i in range(2)])
    for index, name in enumerate(contenders):
        herd_image = bench.image(f"bench/herd-{index}", shape, seed=350 + index)
        with bench.scope():
            server, link = bench.edge("herd") if name == "edge" else bench.proxy("herd")
            single_times = [asyncio.run(_single(server.url, f"bench/herd-single-{index}-{r}")) for r in range(singles)]
            single = median(single_times)
            before = link.bytes_down()
            times = asyncio.run(_herd(server.url, f"bench/herd-{index}", sizes.herd_pulls))
            backend = link.bytes_down() - before
            extra = {}
            if isinstance(server, Edge):
                samples = server.metrics()
                extra = {"fills": {k: v for k, v in samples.items() if k.startswith("mirror_fills_total")},
                         "fill_waiters": samples.get("mirror_fill_waiters_total")}
        results[name] = {
            "single_seconds": single, "single_samples": single_times, "p50_seconds": percentile(times, 0.5), "p99_seconds": percentile(times, 0.99),
            "max_seconds": max(times), "backend_bytes": backend, "image_bytes": herd_image.total_bytes,
            "backend_bytes_ratio": backend / herd_image.total_bytes, "p99_over_single": ratio(percentile(times, 0.99), single),
            "pull_seconds": times, **extra,
        }
        bench.progress.step(f"{name}: {sizes.herd_pulls} pulls p50 {results[name]['p50_seconds']:.2f}s "
                            f"p99 {results[name]['p99_seconds']:.2f}s (single {single:.2f}s), backend bytes "
                            f"{results[name]['backend_bytes_ratio']:.2f}× the image")
    return {
        "pulls": sizes.herd_pulls,
        "image_bytes": results["edge"]["image_bytes"],
        **results,
        "backend_bytes_ratio": results["edge"]["backend_bytes_ratio"],
        "p99_over_single": results["edge"]["p99_over_single"],
        "registry_proxy_backend_bytes_ratio": results["registry_proxy"]["backend_bytes_ratio"],
    }
