"""`push`: one big blob pushed through the far link, the way docker pushes a layer (POST an upload session, one
streamed PATCH, PUT ?digest=), by the contenders one after the other, each with a link of its own:

- ``edge``: the edge with the product's ``upload.parallel_parts`` (several S3 parts on their way at once);
- ``edge_sequential``: the same edge with ``parallel_parts = 1``, one part at a time (what issue 11 measured);
- ``registry2``: registry:2 with its S3 driver (the central registry) receiving the same push;
- ``edge_no_link`` (not in quick mode): the edge with the product's settings straight on SeaweedFS, no emulator:
  the ceiling of this machine (client, edge and SeaweedFS share its cores; SeaweedFS spends the most CPU per
  pushed byte, and its CopyObject rewrites the whole blob).

Each contender pushes different bytes (a blob already in the bucket would skip the edge's final copy). Peak RSS
is sampled during each push. Quick mode uses 5 MiB parts, so its small blob still splits into many parts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from load.bench import Bench
from load.components import Edge, Emulator, Registry2
from load.procs import RssSampler, cpu_seconds
from load.scenarios_memory import push_blob
from mirror.config import load as load_config

MIB = 1024 * 1024


def _measure(bench: Bench, label: str, registry: Edge | Registry2, link: Emulator | None, size: int, seed: int) -> dict[str, Any]:
    pids = {"cpu_seconds": registry.process.pid, "seaweed_cpu_seconds": bench.seaweed.process.pid}
    before = {key: cpu_seconds(pid) for key, pid in pids.items()}
    with RssSampler(registry.process.pid) as sampler:
        outcome = asyncio.run(push_blob(registry, f"bench/push-{label}", size, seed))
    if "skipped" in outcome:
        raise RuntimeError(f"{label}: {outcome['skipped']}")
    outcome.update({key: cpu_seconds(pid) - before[key] for key, pid in pids.items()})
    outcome.update(peak_rss_mib=sampler.peak / MIB, idle_rss_mib=sampler.baseline / MIB,
                   megabytes_per_second=size / outcome["seconds"] / 1e6)
    if link is not None:
        stats = link.stats()
        outcome.update(bytes_up_through_link=stats["bytes_up"], link_connections=stats["connections"])
    bench.progress.step(f"{label}: {size >> 20} MiB pushed in {outcome['seconds']:.1f}s "
                        f"({outcome['megabytes_per_second']:.0f} MB/s), peak RSS {outcome['peak_rss_mib']:.0f} MiB")
    return outcome


def push(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    size = sizes.push_blob
    upload = load_config(None, environ={f"MIRROR_UPLOAD_{key.upper()}": str(value) for key, value in sizes.push_upload.items()}).upload
    result: dict[str, Any] = {"bytes": size, "part_size": upload.part_size, "parallel_parts": upload.parallel_parts}
    for label, seed, settings in (("edge", 701, {}), ("edge_sequential", 702, {"parallel_parts": 1})):
        with bench.scope():
            edge, link = bench.edge(f"push-{label}", upload={**sizes.push_upload, **settings})
            result[label] = _measure(bench, label, edge, link, size, seed)
    with bench.scope():
        central, link = bench.central("push-registry2")
        result["registry2"] = _measure(bench, "registry2", central, link, size, 703)
    if sizes.mode != "quick":  # the ceiling says nothing at quick sizes, where round trips dominate
        with bench.scope():
            try:
                result["edge_no_link"] = _measure(bench, "edge_no_link", bench.bucket_edge("push-no-link", sizes.push_upload), None, size, 704)
            except Exception as error:  # noqa: BLE001 - the ceiling is context: its failure must not lose the contest
                bench.progress.step(f"edge_no_link failed: {error}")
                result["edge_no_link_error"] = f"{type(error).__name__}: {error}"
    seconds = result["edge"]["seconds"]
    result["speedup_vs_sequential"] = result["edge_sequential"]["seconds"] / seconds
    result["speedup_vs_registry2"] = result["registry2"]["seconds"] / seconds
    result["peak_rss_mib"] = result["edge"]["peak_rss_mib"]
    if "edge_no_link" in result:  # how close the edge comes to what this machine carries, and the best speedup here
        result["share_of_no_link"] = result["edge_no_link"]["seconds"] / seconds
        result["ceiling_speedup_vs_sequential"] = result["edge_sequential"]["seconds"] / result["edge_no_link"]["seconds"]
    bench.progress.step(f"push: {result['speedup_vs_sequential']:.1f}x one part at a time, "
                        f"{result['speedup_vs_registry2']:.1f}x registry:2")
    return result
