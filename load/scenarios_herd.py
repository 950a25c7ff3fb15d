"""Herd scenario: many concurrent pulls of one image on one node, each by its own client, and what this machine
could carry for the same herd whatever serves it.

- `edge` (the headline): rounds of (one single cold pull of an image of the herd's shape, then `herd_pulls`
  simultaneous cold pulls of another such image). A herd's pulls share one fill, so they end within a few ms
  of each other and a herd's p99 is one draw of the link's time to first byte, like one single pull: the
  figures are medians over the rounds on both sides (`p99_seconds` is the median of the rounds' p99s;
  `pull_seconds` holds every pull). `backend_bytes_ratio` is the link's bytes over the herds' image bytes, what
  the bucket sent; `edge_read_bytes_ratio` is what the edge read of them (its ``mirror_backend_bytes_total``). The
  difference is bytes in flight when the edge cut a GET short (a race's loser, a part whose tail an idle
  connection took over): sent, paid for, never read.
- `edge_warm`: the last herd's image, now cached on the edge: single pulls and a herd again (local serving only).
- `nginx` (the ceiling): the same herd image laid out as static files (``/v2/<name>/manifests/v1``,
  ``/v2/<name>/blobs/<digest>``) served by nginx with sendfile, pulled by the same clients (same hashing).
  Nothing serves a herd faster here: `ceiling_p99_s` is its herd p99, `p99_over_ceiling` the edge's cold herd
  p99 over it, and `best_p99_over_single` = max(edge single, ceiling p99) / edge single is the lowest
  `p99_over_single` this machine allows (a cold herd can beat neither the link nor local serving).
- `registry_proxy`: single cold pulls, then one cold herd.

Every herd records the CPU seconds it cost (the server's user and system time, the clients' — this process —
and the whole machine's busy cores), so a herd bound by the clients' hashing or by the two cores shows it.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from load import client
from load.bench import Bench
from load.client import ACCEPT
from load.comparators import Comparators
from load.images import BuiltImage
from load.measure import median, percentile, pull_backend_bytes, ratio
from load.procs import cpu_times


async def _single(url: str, name: str) -> float:
    async with client.new_session() as session:
        return (await client.pull(session, url, name, "v1")).seconds


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _measured_herd(url: str, name: str, pulls: int, server_pid: int) -> dict[str, Any]:
    """One herd: its pull times and the CPU it cost (the server's user and system time, the clients' — this
    process —, and the whole machine's busy cores, other work on the machine included) over its wall time."""
    before = (time.perf_counter(), time.process_time(), _machine_busy_seconds(), *cpu_times(server_pid))
    times = asyncio.run(client.herd(url, name, pulls))
    after = (time.perf_counter(), time.process_time(), _machine_busy_seconds(), *cpu_times(server_pid))
    wall, clients, machine, user, system = (b - a for a, b in zip(before, after))
    cpu = {"wall_seconds": wall, "clients_cpu_seconds": clients, "server_user_seconds": user,
           "server_system_seconds": system, "machine_busy_cores": machine / wall if wall else 0.0}
    return {"times": times, "cpu": cpu}


def _cpu_text(cpu: dict[str, float]) -> str:
    return (f"CPU s: server {cpu['server_user_seconds']:.2f} user + {cpu['server_system_seconds']:.2f} system, "
            f"clients {cpu['clients_cpu_seconds']:.2f}, in {cpu['wall_seconds']:.2f} s with the machine "
            f"{cpu['machine_busy_cores']:.2f} cores busy")


def _summary(singles: list[float], herds: list[dict[str, Any]], image_bytes: int) -> dict[str, Any]:
    """Medians over rounds: single pulls, and each herd's p50/p99."""
    p99s = [percentile(h["times"], 0.99) for h in herds]
    single = median(singles)
    return {
        "single_seconds": single, "single_samples": singles, "image_bytes": image_bytes,
        "p50_seconds": median([percentile(h["times"], 0.5) for h in herds]), "p99_seconds": median(p99s),
        "p99_by_round": p99s, "max_seconds": max(max(h["times"]) for h in herds),
        "p99_over_single": ratio(median(p99s), single), "cpu_by_round": [h["cpu"] for h in herds],
        "cpu": {key: median([h["cpu"][key] for h in herds]) for key in herds[0]["cpu"]},
        "pull_seconds": [t for h in herds for t in h["times"]],
    }


def _static_layout(source_url: str, name: str, image: BuiltImage, root: Path) -> None:
    """Lay `name:v1` out under `root` as a registry's GET paths, copied from `source_url` (which has it cached)."""
    def get(path: str, accept: str | None = None) -> bytes:
        request = urllib.request.Request(f"{source_url}/v2/{name}/{path}", headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.read()

    (root / "v2" / name / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "v2" / name / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "v2" / name / "manifests" / "v1").write_bytes(get(f"manifests/{image.manifest_digest}", ACCEPT))
    for blob in image.blobs:
        (root / "v2" / name / "blobs" / blob.digest).write_bytes(get(f"blobs/{blob.digest}"))


def _edge_rounds(bench: Bench, shape: list[int], rounds: int) -> dict[str, dict[str, Any]]:
    """The cold rounds on the edge, then the same herd warm on the edge and from nginx."""
    pulls = bench.sizes.herd_pulls
    names = [(f"bench/herd-single-0-{r}", f"bench/herd-0-{r}") for r in range(rounds)]
    herd_images = [bench.image(herd_name, shape, seed=350 + r) for r, (_, herd_name) in enumerate(names)]
    results: dict[str, dict[str, Any]] = {}
    with bench.scope():
        edge, link = bench.edge("herd")
        singles, herds, backend, read = [], [], 0, 0.0
        for single_name, herd_name in names:
            singles.append(asyncio.run(_single(edge.url, single_name)))
            before, read_before = link.bytes_down(), pull_backend_bytes(edge.metrics())
            herds.append(_measured_herd(edge.url, herd_name, pulls, edge.process.pid))
            backend += link.bytes_down() - before
            read += pull_backend_bytes(edge.metrics()) - read_before
            bench.progress.step(f"edge round {len(herds)}/{rounds}: single {singles[-1]:.2f}s, {pulls} pulls p99 "
                                f"{percentile(herds[-1]['times'], 0.99):.2f}s; {_cpu_text(herds[-1]['cpu'])}")
        samples = edge.metrics()
        image_bytes = herd_images[0].total_bytes
        results["edge"] = {
            **_summary(singles, herds, image_bytes), "backend_bytes": backend,
            "backend_bytes_ratio": backend / sum(image.total_bytes for image in herd_images),
            "edge_read_bytes_ratio": read / sum(image.total_bytes for image in herd_images),
            "fills": {k: v for k, v in samples.items() if k.startswith("mirror_fills_total")},
            "fill_waiters": samples.get("mirror_fill_waiters_total"),
        }
        warm_name, warm_image = names[-1][1], herd_images[-1]
        warm_singles = [asyncio.run(_single(edge.url, warm_name)) for _ in range(rounds)]
        warm_herds = [_measured_herd(edge.url, warm_name, pulls, edge.process.pid) for _ in range(rounds)]
        results["edge_warm"] = {**_summary(warm_singles, warm_herds, image_bytes), "backend_bytes_ratio": None}
        bench.progress.step(f"edge warm: single {results['edge_warm']['single_seconds']:.2f}s, herd p99 "
                            f"{results['edge_warm']['p99_seconds']:.2f}s; {_cpu_text(warm_herds[-1]['cpu'])}")
        root = bench.workdir / "herd-static"
        _static_layout(edge.url, warm_name, warm_image, root)
        nginx = bench.nginx(root)
        nginx_singles = [asyncio.run(_single(nginx.url, warm_name)) for _ in range(rounds)]
        nginx_herds = [_measured_herd(nginx.url, warm_name, pulls, nginx.process.pid) for _ in range(rounds)]
        results["nginx"] = {**_summary(nginx_singles, nginx_herds, image_bytes), "backend_bytes_ratio": None}
        bench.progress.step(f"nginx (ceiling): single {results['nginx']['single_seconds']:.2f}s, herd p99 "
                            f"{results['nginx']['p99_seconds']:.2f}s; {_cpu_text(nginx_herds[-1]['cpu'])}")
    return results


def _proxy_round(bench: Bench, shape: list[int], singles: int) -> dict[str, Any]:
    herd_image = bench.image("bench/herd-1", shape, seed=351)
    with bench.scope():
        proxy, link = bench.proxy("herd")
        single_times = [asyncio.run(_single(proxy.url, f"bench/herd-single-1-{r}")) for r in range(singles)]
        before = link.bytes_down()
        herd = _measured_herd(proxy.url, "bench/herd-1", bench.sizes.herd_pulls, proxy.process.pid)
        backend = link.bytes_down() - before
    return {**_summary(single_times, [herd], herd_image.total_bytes), "backend_bytes": backend,
            "backend_bytes_ratio": backend / herd_image.total_bytes}


def herd(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    shape = [sizes.herd_layer, *sizes.small_layers]
    rounds = max(2, sizes.repeats)
    singles = [(f"bench/herd-single-{i}-{r}", shape, 300 + 10 * i + r, None) for i in range(2) for r in range(rounds)]
    herds = [(f"bench/herd-0-{r}", shape, 350 + r, None) for r in range(rounds)] + [("bench/herd-1", shape, 351, None)]
    bench.images(singles + herds)
    results = _edge_rounds(bench, shape, rounds)
    others = Comparators(log=bench.progress.step)
    proxy = others.call("registry_proxy", lambda: _proxy_round(bench, shape, rounds)) or {}
    if proxy:
        results["registry_proxy"] = proxy
        bench.progress.step(f"registry_proxy: {sizes.herd_pulls} pulls p99 {proxy['p99_seconds']:.2f}s (single "
                            f"{proxy['single_seconds']:.2f}s), backend bytes {proxy['backend_bytes_ratio']:.2f}× "
                            "the image")
    edge, ceiling = results["edge"], results["nginx"]
    return {
        "pulls": sizes.herd_pulls,
        "rounds": rounds,
        "image_bytes": edge["image_bytes"],
        **results,
        "backend_bytes_ratio": edge["backend_bytes_ratio"],
        "edge_read_bytes_ratio": edge["edge_read_bytes_ratio"],
        "p99_over_single": edge["p99_over_single"],
        "ceiling_p99_s": ceiling["p99_seconds"],
        "ceiling_single_s": ceiling["single_seconds"],
        "p99_over_ceiling": ratio(edge["p99_seconds"], ceiling["p99_seconds"]),
        "warm_p99_over_ceiling": ratio(results["edge_warm"]["p99_seconds"], ceiling["p99_seconds"]),
        "best_p99_over_single": ratio(max(edge["single_seconds"], ceiling["p99_seconds"]), edge["single_seconds"]),
        "registry_proxy_backend_bytes_ratio": proxy.get("backend_bytes_ratio"),
        **others.summary(),  # the proxy's round, if it failed even when pulled again: why its figures are blank
    }
