"""`prefetch`: a cold pull of a typical image through the emulated far link by a client that fetches three layers
at a time (docker's and containerd's default), so a ten-layer image pays several rounds of first-byte latency
unless the server starts the later layers early.

The image shape is modelled on an application image built on ``python:3.11-slim`` (linux/amd64, compressed sizes
approximately as the registry lists them): the Debian bookworm-slim base (~28 MiB), Python's runtime packages
(~3.4 MiB), the Python build (~12 MiB), its small symlink and pip layers (~250 KiB, ~3 MiB), then what a typical
``pip install -r requirements.txt`` app adds: dependencies (~6 MiB and ~1.5 MiB), the code (~600 KiB), a config
layer (~300 KiB) and an entrypoint layer (~150 KiB): ten layers, two of tens of MiB, the rest a few MiB down to a
few hundred KiB. Quick mode divides every size by four.

Contenders, each with its own emulator (so every one starts cold) and each round on a new image: the edge with
``fill.prefetch = true`` (`edge_prefetch`), the same edge without it (`edge`), registry:2 direct and registry:2
proxy. The prefetching edge's bucket bytes and prefetch counters are reported beside its times. After them, the
`ceiling`: the round's blobs read all at once straight through an emulator of their own by one aioboto3 client
with the edge's ``fill.parallelism`` ranged GETs shared by size, bytes dropped (`bare.parallel_get_many`): what
the link and this machine carry with no edge, no manifest and no three-at-a-time client (`edge_over_ceiling`).
Then the same read preceded by the two reads any server must make, one after the other, before it knows the
layers: the tag's link, then the manifest (`ceiling_with_manifest`). That is the fastest cold pull any server
could give over this link; `best_speedup_vs_registry_direct` (registry:2 direct over it) is the most goal 5's
ratio can be here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from load import bare, client
from load.bench import Bench
from load.comparators import Comparators
from load.measure import median, pull_backend_bytes, ratio
from mirror import layout
from mirror.config.loader import DEFAULTS
from mirror.reference import parse_digest

KIB = 1024
MIB = 1024 * KIB
# python:3.11-slim's five layers, then five of an app on top (see the module docstring).
TYPICAL_IMAGE = [28 * MIB, 3400 * KIB, 12 * MIB, 250 * KIB, 3 * MIB, 6 * MIB, 1536 * KIB, 600 * KIB, 300 * KIB, 150 * KIB]
PARALLEL_LAYERS = 3  # docker's max-concurrent-downloads and containerd's default
PREFETCHING = "edge_prefetch"
CONTENDERS = [PREFETCHING, "edge", "registry_direct", "registry_proxy"]


def image_shape(mode: str) -> list[int]:
    return [max(64 * KIB, size // 4) for size in TYPICAL_IMAGE] if mode == "quick" else list(TYPICAL_IMAGE)


def prefetch(bench: Bench) -> dict[str, Any]:
    shape = image_shape(bench.sizes.mode)
    rounds = bench.images([(f"bench/typical-{index}", shape, 600 + index, None) for index in range(bench.sizes.repeats)])
    bench.progress.step(f"{len(rounds)} images of {len(shape)} layers, {rounds[0].total_bytes / MIB:.1f} MiB each, pushed")
    raw: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    ceiling: list[float] = []
    with_manifest: list[float] = []
    streams = int(bench.sizes.edge_fill.get("parallelism", DEFAULTS["fill"]["parallelism"]))
    with bench.scope():
        bare_link = bench.emulator("prefetch-bare")
        servers = {PREFETCHING: bench.edge("prefetch", prefetch=True)[0], "edge": bench.edge("no-prefetch", prefetch=False)[0],
                   "registry_direct": bench.central("prefetch-direct")[0], "registry_proxy": bench.proxy("prefetch")[0]}
        others = Comparators({name: servers[name].process for name in ("registry_direct", "registry_proxy")},
                             log=bench.progress.step)

        async def pull(name: str, index: int) -> client.PullResult:
            async with client.new_session() as session:
                await (await session.get(f"{servers[name].url}/v2/")).release()  # a runtime has its connection open
                return await client.pull(session, servers[name].url, f"bench/typical-{index}", "v1", parallel=PARALLEL_LAYERS)

        async def run() -> None:
            for index in range(len(rounds)):
                order = CONTENDERS[index % len(CONTENDERS):] + CONTENDERS[: index % len(CONTENDERS)]
                for name in order:
                    if name in (PREFETCHING, "edge"):  # the subjects: never retried, a failure is the scenario's
                        result: client.PullResult | None = await pull(name, index)
                    else:
                        result = await others.run(name, lambda: pull(name, index))
                    if result is not None:
                        raw[name].append(result.seconds)
                blobs = [(layout.blob_data(parse_digest(blob.digest)), blob.size) for blob in rounds[index].blobs]
                ceiling.append(await bare.parallel_get_many(bare_link.endpoint, blobs, streams))
                manifest = [layout.tag_current_link(f"bench/typical-{index}", "v1"),
                            layout.blob_data(parse_digest(rounds[index].manifest_digest))]
                with_manifest.append(await bare.parallel_get_many(bare_link.endpoint, blobs, streams, first=manifest))
                bench.progress.step(f"round {index + 1}/{len(rounds)}: " + ", ".join(
                    f"{name} {raw[name][-1]:.2f}s" if len(raw[name]) > index else f"{name} failed" for name in CONTENDERS)
                    + f", ceiling {ceiling[-1]:.2f}s, with the manifest's reads {with_manifest[-1]:.2f}s")

        asyncio.run(run())
        counters = servers[PREFETCHING].metrics()
    seconds = {name: median(values) if values else None for name, values in raw.items()}
    image_bytes = sum(image.total_bytes for image in rounds)
    edge_seconds = seconds[PREFETCHING]
    return {
        **others.summary(),
        "layer_bytes": shape,
        "image_bytes": rounds[0].total_bytes,
        "parallel_layers": PARALLEL_LAYERS,
        "seconds": seconds,
        "runs": raw,
        "speedup_vs_registry_direct": ratio(seconds["registry_direct"] or float("nan"), edge_seconds),
        "speedup_vs_registry_proxy": ratio(seconds["registry_proxy"] or float("nan"), edge_seconds),
        "speedup_vs_edge_without_prefetch": ratio(seconds["edge"], edge_seconds),
        "ceiling_seconds": median(ceiling),
        "ceiling_runs": ceiling,
        "edge_over_ceiling": ratio(edge_seconds, median(ceiling)),
        "ceiling_with_manifest_seconds": median(with_manifest),
        "ceiling_with_manifest_runs": with_manifest,
        "edge_over_ceiling_with_manifest": ratio(edge_seconds, median(with_manifest)),
        "best_speedup_vs_registry_direct": ratio(seconds["registry_direct"] or float("nan"), median(with_manifest)),
        "edge_without_prefetch_speedup_vs_registry_direct": ratio(seconds["registry_direct"] or float("nan"), seconds["edge"]),
        # 1.0: every byte of every round's image crossed the link once (prefetch fetched nothing twice)
        "bucket_bytes_over_image_bytes": pull_backend_bytes(counters) / image_bytes,
        "prefetched_bytes": {result: counters.get(f'mirror_prefetch_bytes_total{{result="{result}"}}', 0.0)
                             for result in ("filled", "skipped", "failed")},
        "prefetched_bytes_served": counters.get("mirror_prefetch_served_bytes_total", 0.0),
    }
