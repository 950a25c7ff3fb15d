"""`sweep`: how cost grows with work, four curves. Every point pulls content nothing has cached yet (each
point its own images). The three pull curves share one fresh edge and one registry:2 direct (a process start
costs seconds on 2 busy cores); the RSS curve starts a fresh edge per point, since Python keeps the memory a
bigger point freed and the next point would read it as its own.

- `layer_size`: a one-layer image per size (`SweepSizes.layer_sizes`), pulled cold through the edge and, up to
  `direct_max` (it reads one layer at ~20 MB/s through the link), straight from registry:2; the ratio per size.
- `layers`: images of 1 … 16 layers of one fixed size, pulled cold through the edge and from registry:2 direct.
- `herd`: N simultaneous cold pulls of one image on the edge (each from its own client, one new image per N);
  p50/p99 pull time and the bytes that crossed the link / image bytes.
- `fills`: N cold blob GETs at once (N different blobs) on a fresh edge; its peak RSS (sampled every 20 ms).

Each curve also gets one number for its shape: the exponent of a power-law fit (time ∝ work^exponent: 1 is
linear, 0 flat) or, for RSS, the slope in MiB per extra fill. One pull per point: the curve smooths the noise.
Every pull and GET has a timeout; every loop is over a fixed tuple of points.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from load import client
from load.bench import MIB, Bench, ImageSpec, SweepSizes
from load.components import Edge, Emulator, Registry2
from load.measure import percentile, ratio
from load.procs import RssSampler


def _timeout(size: int) -> float:
    """A pull's bound: a minute plus the bytes at half of one link connection's 20 MB/s."""
    return 60 + size / 10e6


def _label(size: int) -> str:
    return f"{size / MIB:g}MiB"


@contextlib.contextmanager
def _fresh_edge(bench: Bench, label: str) -> Iterator[tuple[Edge, Emulator]]:
    """A fresh edge, stopped (and its cache deleted, see `Edge.stop`) when the block ends."""
    with bench.scope():
        yield bench.edge(label)


def _pull(url: str, name: str, size: int) -> float:
    """Seconds of one cold pull of `name:v1` from a client of its own."""
    async def run() -> float:
        async with client.new_session() as session:
            return (await client.pull(session, url, name, "v1", timeout=_timeout(size))).seconds

    return asyncio.run(run())


def _direct_point(bench: Bench, on: "_Contenders", point: dict[str, Any], name: str, size: int, edge_seconds: float) -> None:
    """registry:2 direct's time for the same pull, beside the edge's. The comparator failing leaves the point
    without it and says why (process state, log tail) in the results; the edge's own pulls still fail the curve."""
    try:
        point["registry_direct_seconds"] = _pull(on.central.url, name, size)
    except Exception as error:  # noqa: BLE001 - a comparator's failure is reported, not fatal
        state = "running" if on.central.process.alive() else f"exited with {on.central.process.popen.returncode}"
        point["registry_direct_error"] = f"{type(error).__name__}: {error} (registry:2 {state}; log: {on.central.process.log_tail(10)})"
        bench.progress.step(f"registry_direct failed, point kept without it: {point['registry_direct_error']}")
        return
    point["speedup_vs_registry_direct"] = ratio(point["registry_direct_seconds"], edge_seconds)


def exponent(work: list[float], cost: list[float]) -> float:
    """The exponent b of cost ≈ a · work^b (least squares in log-log); NaN with fewer than two distinct points."""
    pairs = [(math.log(w), math.log(c)) for w, c in zip(work, cost) if w > 0 and c > 0]
    if len({x for x, _ in pairs}) < 2:
        return float("nan")
    return statistics.linear_regression([x for x, _ in pairs], [y for _, y in pairs]).slope


def slope(work: list[float], cost: list[float]) -> float:
    """Cost per unit of work (least-squares line); NaN with fewer than two distinct points."""
    if len(set(work)) < 2:
        return float("nan")
    return statistics.linear_regression(work, cost).slope


def _size_specs(sweep: SweepSizes) -> list[ImageSpec]:
    return [(f"bench/sweep-size-{size}", [size], 600 + index, None) for index, size in enumerate(sweep.layer_sizes)]


@dataclass
class _Contenders:
    """What the pull curves share: one fresh edge (with its link) and one registry:2 direct."""

    edge: Edge
    link: Emulator
    central: Registry2


def _by_layer_size(bench: Bench, sweep: SweepSizes, on: _Contenders) -> dict[str, Any]:
    names = [spec[0] for spec in _size_specs(sweep)]
    built = bench.images(_size_specs(sweep))
    points = []
    for name, size, image in zip(names, sweep.layer_sizes, built):
        edge_seconds = _pull(on.edge.url, name, image.total_bytes)
        point: dict[str, Any] = {"label": _label(size), "layer_bytes": size, "image_bytes": image.total_bytes,
                                 "edge_seconds": edge_seconds, "edge_bytes_per_second": image.total_bytes / edge_seconds}
        if size <= sweep.direct_max:
            _direct_point(bench, on, point, name, image.total_bytes, edge_seconds)
        points.append(point)
        bench.progress.step(f"{_label(size)} layer: edge {edge_seconds:.2f}s" + (
            f", registry_direct {point['registry_direct_seconds']:.2f}s ({point['speedup_vs_registry_direct']:.1f}×)"
            if "registry_direct_seconds" in point else ""))
    return {
        "points": points,
        "direct_max_bytes": sweep.direct_max,
        "speedup_vs_registry_direct": {p["label"]: p["speedup_vs_registry_direct"] for p in points if "speedup_vs_registry_direct" in p},
        "edge_exponent": exponent([p["layer_bytes"] for p in points], [p["edge_seconds"] for p in points]),
        "edge_seconds_per_gib": slope([p["layer_bytes"] / 2**30 for p in points], [p["edge_seconds"] for p in points]),
    }


def _layer_specs(sweep: SweepSizes) -> list[ImageSpec]:
    """One image per layer count, each of layers of its own ((seed, size) pairs, so no point finds another's
    layers in the cache); the fills reuse the biggest image's layers."""
    specs: list[ImageSpec] = []
    seed = 7000
    for count in sweep.layer_counts:
        specs.append((f"bench/sweep-layers-{count}", [], 700 + count, [(seed + index, sweep.layer_bytes) for index in range(count)]))
        seed += count
    return specs


def _layer_images(bench: Bench, sweep: SweepSizes) -> list[tuple[str, Any]]:
    specs = _layer_specs(sweep)
    return list(zip([spec[0] for spec in specs], bench.images(specs)))


def _by_layers(bench: Bench, sweep: SweepSizes, on: _Contenders) -> dict[str, Any]:
    points = []
    direct = sweep.layer_bytes <= sweep.direct_max
    for count, (name, image) in zip(sweep.layer_counts, _layer_images(bench, sweep)):
        edge_seconds = _pull(on.edge.url, name, image.total_bytes)
        point: dict[str, Any] = {"layers": count, "image_bytes": image.total_bytes, "edge_seconds": edge_seconds}
        if direct:
            _direct_point(bench, on, point, name, image.total_bytes, edge_seconds)
        points.append(point)
        bench.progress.step(f"{count} × {_label(sweep.layer_bytes)} layers: edge {edge_seconds:.2f}s"
                            + (f", registry_direct {point['registry_direct_seconds']:.2f}s" if "registry_direct_seconds" in point else ""))
    return {
        "layer_bytes": sweep.layer_bytes,
        "points": points,
        "edge_exponent": exponent([p["layers"] for p in points], [p["edge_seconds"] for p in points]),
        "edge_seconds_per_layer": slope([p["layers"] for p in points], [p["edge_seconds"] for p in points]),
    }


# Blobs one herd client fetches at once: docker's and containerd's default (max concurrent downloads 3). It
# also keeps 256 clients' connections (768) under the edge's default http.max_connections (1024).
HERD_CLIENT_CONNECTIONS = 3


def _herd_specs(sweep: SweepSizes, small_layers: tuple[int, ...]) -> list[ImageSpec]:
    return [(f"bench/sweep-herd-{pulls}", [sweep.herd_layer, *small_layers], 800 + pulls, None) for pulls in sweep.herd_sizes]


def _by_herd(bench: Bench, sweep: SweepSizes, on: _Contenders) -> dict[str, Any]:
    built = bench.images(_herd_specs(sweep, bench.sizes.small_layers))
    points = []
    for pulls, image in zip(sweep.herd_sizes, built):
        before = on.link.bytes_down()
        times = asyncio.run(client.herd(on.edge.url, f"bench/sweep-herd-{pulls}", pulls, HERD_CLIENT_CONNECTIONS,
                                       _timeout(image.total_bytes) + pulls * image.total_bytes / 50e6))
        backend = on.link.bytes_down() - before
        points.append({"pulls": pulls, "p50_seconds": percentile(times, 0.5), "p99_seconds": percentile(times, 0.99),
                       "max_seconds": max(times), "backend_bytes_ratio": backend / image.total_bytes, "pull_seconds": times})
        bench.progress.step(f"herd of {pulls}: p50 {points[-1]['p50_seconds']:.2f}s p99 {points[-1]['p99_seconds']:.2f}s, "
                            f"backend bytes {points[-1]['backend_bytes_ratio']:.2f}× the image")
    first = points[0]["p99_seconds"]
    for point in points:
        point["p99_over_smallest"] = ratio(point["p99_seconds"], first)
    return {
        "image_bytes": built[0].total_bytes,
        "points": points,
        "p99_exponent": exponent([p["pulls"] for p in points], [p["p99_seconds"] for p in points]),
        "p99_over_smallest_at_largest": points[-1]["p99_over_smallest"],
    }


async def _fills(url: str, name: str, digests: list[str], size: int) -> float:
    async with client.new_session(connections=max(8, len(digests))) as session:
        started = time.perf_counter()
        gets = asyncio.gather(*(client.fetch_blob(session, f"{url}/v2/{name}/blobs/{digest}", digest) for digest in digests))
        await asyncio.wait_for(gets, _timeout(size * len(digests)))
        return time.perf_counter() - started


def _by_fills(bench: Bench, sweep: SweepSizes) -> dict[str, Any]:
    name, image = _layer_images(bench, sweep)[-1]  # built already by the layers curve (or now, if it failed)
    if len(image.layers) < max(sweep.fill_counts):
        raise ValueError(f"SweepSizes: fill_counts {sweep.fill_counts} need as many layers in the biggest of layer_counts")
    points = []
    for count in sweep.fill_counts:
        with _fresh_edge(bench, "sweep-fills") as (edge, _):
            with RssSampler(edge.process.pid) as sampler:
                seconds = asyncio.run(_fills(edge.url, name, [blob.digest for blob in image.layers[:count]], sweep.layer_bytes))
        points.append({"fills": count, "peak_rss_mib": sampler.peak / MIB, "baseline_rss_mib": sampler.baseline / MIB,
                       "seconds": seconds})
        bench.progress.step(f"{count} concurrent {_label(sweep.layer_bytes)} fills in {seconds:.2f}s: peak RSS "
                            f"{sampler.peak / MIB:.0f} MiB (idle {sampler.baseline / MIB:.0f} MiB)")
    return {
        "blob_bytes": sweep.layer_bytes,
        "points": points,
        "peak_rss_mib": max(p["peak_rss_mib"] for p in points),
        "rss_mib_per_fill": slope([p["fills"] for p in points], [p["peak_rss_mib"] for p in points]),
    }


PULL_CURVES: dict[str, Callable[[Bench, SweepSizes, _Contenders], dict[str, Any]]] = {
    "layer_size": _by_layer_size, "layers": _by_layers, "herd": _by_herd,
}


def sweep(bench: Bench) -> dict[str, Any]:
    """The four curves: the three pull curves on one fresh edge and one registry:2 direct, then the fills."""
    result: dict[str, Any] = {"edge_fill": bench.sizes.edge_fill}
    failed: list[str] = []
    sizes = bench.sizes.sweep
    started = time.monotonic()  # every image at once: the pushes overlap (each curve then finds its images built)
    bench.images(_size_specs(sizes) + _layer_specs(sizes) + _herd_specs(sizes, bench.sizes.small_layers))
    result["images_seconds"] = time.monotonic() - started
    bench.progress.step(f"images built and pushed in {result['images_seconds']:.1f}s")
    with _fresh_edge(bench, "sweep") as (edge, link):
        on = _Contenders(edge, link, bench.central("sweep-direct")[0])
        for name, curve in PULL_CURVES.items():
            failed += _run_curve(bench, result, name, partial(curve, bench, sizes, on))
    failed += _run_curve(bench, result, "fills", partial(_by_fills, bench, sizes))
    if failed:
        result["error"] = "; ".join(failed)
    return result


def _run_curve(bench: Bench, result: dict[str, Any], name: str, curve: Callable[[], dict[str, Any]]) -> list[str]:
    """Run one curve into result[name]; a curve that fails is recorded with its error (the others still run)."""
    bench.progress.step(f"curve {name}")
    try:
        result[name] = curve()
    except Exception as error:  # noqa: BLE001 - one broken curve must not hide the others
        result[name] = {"error": f"{type(error).__name__}: {error}"}
        return [f"{name}: {result[name]['error']}"]
    return []
