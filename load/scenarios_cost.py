"""`cost`: CPU seconds per GiB of each process, side by side (issue 23): what each byte costs a node.

One blob size (`Sizes.cost_blob`: 512 MiB full, the issue's figure; 256 MiB medium; 32 MiB quick), each cold
fill on a blob nobody has read yet:

- ``edge_cold_link``: the edge's cold fill-and-serve through the emulated far link (24 streams at 20 MB/s, the
  way Storj delivers: many small reads); ``edge_cold_bucket``: the same straight from SeaweedFS;
- ``edge_warm``: the cached blob served again (`measure.blob_load`, 1 MiB `recv_into` reads);
- ``edge_push``: a blob pushed the way docker pushes a layer (POST, one streamed PATCH, PUT ?digest=), straight
  to SeaweedFS, the edge's first; ``edge_push_again``: a second blob of the same size pushed next through the same
  edge, as an edge that takes pushes all day does (its parts write over the spool files the first push left);
- ``registry_proxy_cold`` / ``registry_proxy_warm``: registry:2 2.8 in proxy mode (its remote a central
  registry:2 reading the bucket through a link of its own), the proxy process only (the central's is beside it);
- ``nginx_warm``: nginx with sendfile serving the very file the edge cached (master and workers);
- ``edge_cold_bucket_tls`` / ``edge_push_tls``: an edge reaching the bucket over TLS (SeaweedFS's HTTPS port, a
  self-signed certificate the edge trusts through ``AWS_CA_BUNDLE``), as edges reach Storj: a cold fill and two
  pushes (``edge_push_tls``, ``edge_push_tls_again``), whose parts go ``UNSIGNED-PAYLOAD`` there.

Then the pinned fill (goal 4): each edge (link and bucket) fills one more cold blob with every one of its threads
pinned to one core (`os.sched_setaffinity`, threads started later inherit it), beside the unpinned fill above:
throughput, the edge's CPU per GiB, and the CPU share of each process in the chain (edge, emulator, SeaweedFS,
the harness's reader) over the fill's wall time. `busiest` names the process that spent the most; one near a
whole core (the pinned edge near 1.0) bounds the run, none near it means the link or the machine's other load
does.

Last the floor (`load/floor.py`, in a process of its own): the same number of bytes received over loopback, hashed,
written into a new file and sent with `sendfile` (or over TLS), the least any server on this machine spends on
them; and the same bytes as a push's body through the edge's own HTTP server to an app that drops them
(`load/floorstack.py`), the least a push through hypercorn, h11 and starlette can spend (``floor_push_stack``;
``floor_push_tls_stack`` to an HTTPS bucket; ``_rewrite`` for a push after the first, whose spool pages are
cached).

The readers drop the bytes (no hashing): the figures are the servers'. CPU is read from /proc (user + system,
all threads; nginx and its workers summed). Quick mode keeps every step small (about a minute with the bucket's
start): it is there so the scenario never rots, its figures are round trips more than bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from load.bench import Bench
from load.comparators import Comparators
from load.components import Edge
from load.measure import blob_load, ratio
from load.procs import cpu_times
from load.scenarios_memory import push_blob

GIB = 2**30
MB = 1e6
PINNED_CORE = 0


def memory_state() -> dict[str, int]:
    """The machine's free memory and page cache, MiB (/proc/meminfo). Writing new page-cache pages costs very
    differently with the memory's state: the same ``dd`` of new pages cost 0.3-0.45 CPU-s/GiB on this project's
    2-core VM with the memory just freed or reclaimed from old cache, 2.9 with it long free (a balloon that reports
    free pages to the host, so a page touched again is a host fault, would explain it; not proven). Every cost
    figure is read beside this and the floor's ``write``."""
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    return {"free_mib": int(fields["MemFree"].split()[0]) // 1024, "page_cache_mib": int(fields["Cached"].split()[0]) // 1024}


def pin(pid: int, cores: set[int] | None) -> None:
    """Pin every thread of `pid` to `cores` (None: every core of the machine again)."""
    wanted = cores if cores is not None else set(range(os.cpu_count() or 1))
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), wanted)
        except (ProcessLookupError, PermissionError):
            pass


class Meter:
    """CPU seconds of named processes (and of this harness, "reader") around one measured step, user and system
    apart: system time is the kernel's work for the process (page-cache and socket copies, page faults)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def now(self) -> dict[str, Any]:
        harness = os.times()
        return {"cpu": {**{name: cpu_times(pid) for name, pid in self.pids.items()}, "reader": (harness.user, harness.system)},
                "wall": time.perf_counter()}

    @staticmethod
    def step(before: dict[str, Any], after: dict[str, Any], moved: int) -> dict[str, Any]:
        """Per GiB moved, each process's CPU seconds (and the system part of them); its share of one core over
        the wall time; MB/s."""
        wall = after["wall"] - before["wall"]
        spent = {name: sum(after["cpu"][name]) - sum(times) for name, times in before["cpu"].items()}
        system = {name: after["cpu"][name][1] - times[1] for name, times in before["cpu"].items()}
        return {"bytes": moved, "seconds": wall, "megabytes_per_second": moved / wall / MB if wall else None,
                "cpu_seconds": spent, "cpu_seconds_per_gib": {name: value / moved * GIB for name, value in spent.items()},
                "system_seconds_per_gib": {name: value / moved * GIB for name, value in system.items()},
                "cores_busy": {name: value / wall if wall else None for name, value in spent.items()},
                "busiest": max(spent, key=lambda name: spent[name])}


async def _read(url: str, expected: int) -> int:
    """GET `url` to the end, bytes dropped; raise unless it is `expected` bytes with a 200."""
    received = 0
    timeout = aiohttp.ClientTimeout(total=60 + expected / 5e6, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        async with session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"GET {url}: {response.status} {(await response.read())[:200]!r}")
            async for chunk in response.content.iter_any():
                received += len(chunk)
    if received != expected:
        raise RuntimeError(f"GET {url}: {received} of {expected} bytes")
    return received


def _cold(meter: Meter, url: str, size: int) -> dict[str, Any]:
    before = meter.now()
    moved = asyncio.run(_read(url, size))
    return meter.step(before, meter.now(), moved)


def _push(meter: Meter, edge: Edge, name: str, size: int, seed: int) -> dict[str, Any]:
    """One blob of `size` pushed through `edge` as docker pushes a layer, metered."""
    before = meter.now()
    pushed = asyncio.run(push_blob(edge, name, size, seed))
    if "skipped" in pushed:
        raise RuntimeError(f"edge push to {name}: {pushed['skipped']}")
    return meter.step(before, meter.now(), size)


def _warm(meter: Meter, url: str, seconds: float) -> dict[str, Any]:
    before = meter.now()
    rate, errors = blob_load(url, seconds, connections=2)
    after = meter.now()
    if errors or not rate:
        raise RuntimeError(f"warm reads of {url}: {errors} failed connections")
    return meter.step(before, after, int(rate * (after["wall"] - before["wall"])))


def _edge_fills(bench: Bench, edge: Edge, meter: Meter, blobs: list[tuple[str, Any]], label: str) -> dict[str, Any]:
    """One cold fill unpinned, one with the edge pinned to one core (then unpinned again)."""
    (name, first), (other, second) = blobs
    unpinned = _cold(meter, f"{edge.url}/v2/{name}/blobs/{first.digest}", first.size)
    pin(edge.process.pid, {PINNED_CORE})
    try:
        pinned = _cold(meter, f"{edge.url}/v2/{other}/blobs/{second.digest}", second.size)
    finally:
        pin(edge.process.pid, None)
    bench.progress.step(f"{label}: cold fill {unpinned['megabytes_per_second']:.0f} MB/s at "
                        f"{unpinned['cpu_seconds_per_gib']['edge']:.2f} CPU-s/GiB; pinned to core {PINNED_CORE} "
                        f"{pinned['megabytes_per_second']:.0f} MB/s at {pinned['cpu_seconds_per_gib']['edge']:.2f} "
                        f"(busiest: {pinned['busiest']})")
    return {"unpinned": unpinned, "pinned": pinned,
            "pinned_over_unpinned": ratio(pinned["megabytes_per_second"], unpinned["megabytes_per_second"])}


def _blobs(bench: Bench, count: int) -> list[tuple[str, Any]]:
    size = bench.sizes.cost_blob
    built = bench.images([(f"bench/cost-{index}", [size], 900 + index, None) for index in range(count)])
    return [(f"bench/cost-{index}", image.layers[0]) for index, image in enumerate(built)]


def cost(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    blobs = _blobs(bench, 6)  # link edge: 2, bucket edge: 2, registry:2 proxy: 1, bucket edge over TLS: 1 — each cold once
    seconds = sizes.load_seconds
    result: dict[str, Any] = {"blob_bytes": sizes.cost_blob, "edge_fill": sizes.edge_fill, "pinned_core": PINNED_CORE,
                              "memory_at_start": memory_state()}
    seaweed = bench.seaweed.process.pid
    with bench.scope():
        edge, link = bench.edge("cost")
        on_link = Meter({"edge": edge.process.pid, "emulator": link.process.pid, "seaweedfs": seaweed})
        result["edge_link"] = _edge_fills(bench, edge, on_link, blobs[0:2], "edge through the link")
        result["edge_warm"] = _warm(Meter({"edge": edge.process.pid}), f"{edge.url}/v2/{blobs[0][0]}/blobs/{blobs[0][1].digest}", seconds)
        bench.progress.step(f"edge warm: {result['edge_warm']['cpu_seconds_per_gib']['edge']:.2f} CPU-s/GiB")
        bucket_edge = bench.bucket_edge("cost", upload=sizes.push_upload)
        on_bucket = Meter({"edge": bucket_edge.process.pid, "seaweedfs": seaweed})
        result["edge_bucket"] = _edge_fills(bench, bucket_edge, on_bucket, blobs[2:4], "edge on the bucket")
        result["edge_push"] = _push(on_bucket, bucket_edge, "bench/cost-push", sizes.cost_blob, 905)
        result["edge_push_again"] = _push(on_bucket, bucket_edge, "bench/cost-push-again", sizes.cost_blob, 907)
        cached = [path for path in edge.content_files() if path.stat().st_size == blobs[0][1].size]
        root = bench.workdir / "cost-nginx"
        root.mkdir(exist_ok=True)
        (root / "blob").unlink(missing_ok=True)
        os.link(cached[0], root / "blob")  # the very file the edge serves
        nginx = bench.nginx(root)
        result["nginx_warm"] = _warm(Meter({"nginx": nginx.process.pid}), f"{nginx.url}/blob", seconds)
        bench.progress.step(f"edge push: {result['edge_push']['cpu_seconds_per_gib']['edge']:.2f}, again "
                            f"{result['edge_push_again']['cpu_seconds_per_gib']['edge']:.2f}, nginx warm: "
                            f"{result['nginx_warm']['cpu_seconds_per_gib']['nginx']:.2f} CPU-s/GiB")
        result.update(_proxy(bench, blobs[4], seconds))
        result["edge_tls"] = _over_tls(bench, blobs[5])
        result["memory_at_floor"] = memory_state()
        result["floor"] = _floor(bench, sizes.cost_blob)
    per_gib = {"edge_cold_link": result["edge_link"]["unpinned"], "edge_cold_bucket": result["edge_bucket"]["unpinned"],
               "edge_warm": result["edge_warm"], "edge_push": result["edge_push"],
               "edge_push_again": result["edge_push_again"],
               "registry_proxy_cold": result.get("registry_proxy_cold"), "registry_proxy_warm": result.get("registry_proxy_warm"),
               "nginx_warm": result["nginx_warm"], "edge_cold_bucket_tls": result["edge_tls"]["cold"],
               "edge_push_tls": result["edge_tls"]["push"], "edge_push_tls_again": result["edge_tls"]["push_again"]}
    result["cpu_seconds_per_gib"] = {key: _server_per_gib(step) for key, step in per_gib.items()}
    floors = ("cold", "warm", "push_signed", "push_stack", "push_tls_stack",
              "push_stack_rewrite", "push_tls_stack_rewrite")
    result["cpu_seconds_per_gib"].update({f"floor_{name}": result["floor"][name] for name in floors})
    result["system_seconds_per_gib"] = {key: _server_per_gib(step, "system_seconds_per_gib") for key, step in per_gib.items()}
    result["pinned_over_unpinned"] = {"link": result["edge_link"]["pinned_over_unpinned"],
                                      "bucket": result["edge_bucket"]["pinned_over_unpinned"]}
    result["pinned_cpu_seconds_per_gib"] = {"link": result["edge_link"]["pinned"]["cpu_seconds_per_gib"]["edge"],
                                            "bucket": result["edge_bucket"]["pinned"]["cpu_seconds_per_gib"]["edge"]}
    bench.progress.step("CPU-s/GiB: " + ", ".join(f"{key} {value:.2f}" if value is not None else f"{key} —"
                                                  for key, value in result["cpu_seconds_per_gib"].items()))
    return result


def _server_per_gib(step: dict[str, Any] | None, figure: str = "cpu_seconds_per_gib") -> float | None:
    """The serving process's CPU seconds per GiB of a step (the first process its meter names), or the system
    part of them (`figure` "system_seconds_per_gib")."""
    if not step:
        return None
    value: float = next(iter(step[figure].values()))
    return value


def _over_tls(bench: Bench, blob: tuple[str, Any]) -> dict[str, Any]:
    """A cold fill and two pushes by an edge that reaches the bucket over TLS (as it reaches Storj): parts go
    UNSIGNED-PAYLOAD there, and every byte is encrypted or decrypted once."""
    edge = bench.bucket_edge("cost", upload=bench.sizes.push_upload, tls=True)
    meter = Meter({"edge": edge.process.pid, "seaweedfs": bench.seaweed.process.pid})
    name, layer = blob
    cold = _cold(meter, f"{edge.url}/v2/{name}/blobs/{layer.digest}", layer.size)
    push = _push(meter, edge, "bench/cost-push-tls", bench.sizes.cost_blob, 906)
    again = _push(meter, edge, "bench/cost-push-tls-again", bench.sizes.cost_blob, 908)
    bench.progress.step(f"edge over TLS to the bucket: cold fill {cold['cpu_seconds_per_gib']['edge']:.2f}, "
                        f"push {push['cpu_seconds_per_gib']['edge']:.2f}, "
                        f"again {again['cpu_seconds_per_gib']['edge']:.2f} CPU-s/GiB")
    return {"cold": cold, "push": push, "push_again": again}


def _floor(bench: Bench, size: int) -> dict[str, Any]:
    """`load.floor` in a process of its own (its CPU alone), on the filesystem of the edges' caches."""
    directory = bench.workdir / "cost-floor"
    directory.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "load.floor", str(directory), str(size)], capture_output=True, text=True,
                          timeout=120 + size / 20e6, check=False, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"load.floor exited {done.returncode}: {done.stderr[-800:]}")
    floor: dict[str, Any] = json.loads(done.stdout)
    bench.progress.step("floor, CPU-s/GiB: " + ", ".join(f"{step} {value:.2f}" for step, value in floor["steps_cpu_seconds_per_gib"].items())
                        + f", stack {floor['stack_cpu_seconds_per_gib']:.2f}; cold {floor['cold']:.2f}, warm {floor['warm']:.2f}, "
                        f"push (signed) {floor['push_signed']:.2f}, push through the server {floor['push_stack']:.2f}, "
                        f"to an HTTPS bucket {floor['push_tls_stack']:.2f}; over cached spool pages "
                        f"{floor['push_stack_rewrite']:.2f} and {floor['push_tls_stack_rewrite']:.2f}")
    return floor


def _proxy(bench: Bench, blob: tuple[str, Any], seconds: float) -> dict[str, Any]:
    """registry:2 proxy cold then warm (its central's CPU beside it); a failure leaves both blank with the reason."""
    name, layer = blob
    proxy, central, link = bench.proxy_chain("cost")
    meter = Meter({"registry_proxy": proxy.process.pid, "central": central.process.pid, "emulator": link.process.pid})
    others = Comparators({"registry_proxy": proxy.process}, log=bench.progress.step)
    url = f"{proxy.url}/v2/{name}/blobs/{layer.digest}"
    cold = others.call("registry_proxy", lambda: _cold(meter, url, layer.size))
    warm = others.call("registry_proxy", lambda: _warm(Meter({"registry_proxy": proxy.process.pid}), url, seconds)) if cold else None
    if cold and warm:
        bench.progress.step(f"registry_proxy: cold {cold['cpu_seconds_per_gib']['registry_proxy']:.2f}, warm "
                            f"{warm['cpu_seconds_per_gib']['registry_proxy']:.2f} CPU-s/GiB")
    return {"registry_proxy_cold": cold, "registry_proxy_warm": warm, **others.summary()}

