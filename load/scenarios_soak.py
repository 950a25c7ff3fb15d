"""`soak`: mixed traffic against one edge for ``--soak-minutes``, its RSS and open descriptors sampled over time.

Clients do what a busy node's runtimes do, hostile ones included: manifest GETs by tag, HEADs of blobs, Range
reads, full blob reads (hashed and checked), GETs of unknown blobs (404) and 5 % hang-ups (read 64 KiB of a blob,
then drop the connection). The cache holds about half of the working set, so fills, evictions and hits mix.

Figures: ``rss_growth_ratio`` = max RSS in the second half / max RSS between the warm-up (the first tenth of the
run, at least 60 s, so caches have started to fill) and the half: near 1.0 when memory is bounded. Maxima of like
windows, because RSS at one sample moves by tens of MiB with the responses in flight: a single sample taken right
after the warm-up made a flat run read 1.24. ``rss_at_warm_up_ratio`` keeps that single-sample form for comparison.
``fd_growth`` = max open descriptors in the second half minus the max between the warm-up and the half (likewise). Skipped in quick mode (a soak that
short measures nothing).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from typing import Any

import aiohttp

from load import client
from load.bench import Bench
from load.components import Edge
from load.procs import rss_bytes

MIB = 1024 * 1024
CLIENTS = 6
SAMPLE_SECONDS = 2.0
# (action, weight): the mix of one client's requests.
MIX = [("manifest", 30), ("head", 15), ("range", 15), ("full", 25), ("missing", 10), ("hang_up", 5)]
MISSING = "sha256:" + "0" * 64


class _Sampler:
    """RSS and open descriptors of a process every `SAMPLE_SECONDS`, in a thread (stops when asked)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.series: list[tuple[float, int, int]] = []  # (seconds since start, RSS bytes, open fds)
        self.split: list[tuple[int, int]] = []  # (anonymous, file-backed) RSS bytes: sqlite's mmap is file-backed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            except FileNotFoundError:
                return
            self.series.append((time.monotonic() - self._started, rss_bytes(self.pid), fds))
            self.split.append(_rss_split(self.pid))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> "_Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _rss_split(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    return tuple(int(fields.get(key, "0 kB").split()[0]) * 1024 for key in ("RssAnon", "RssFile"))  # type: ignore[return-value]


async def _one(session: aiohttp.ClientSession, edge: Edge, action: str, image: Any, rng: random.Random) -> None:
    name = image.name
    blob = rng.choice(image.layers)
    url = f"{edge.url}/v2/{name}/blobs/{blob.digest}"
    if action == "manifest":
        async with session.get(f"{edge.url}/v2/{name}/manifests/v1", headers={"Accept": client.ACCEPT}) as response:
            await response.read()
            _expect(response, 200)
    elif action == "head":
        async with session.head(url) as response:
            _expect(response, 200)
    elif action == "range":
        start = rng.randrange(blob.size)
        end = min(blob.size, start + MIB) - 1
        async with session.get(url, headers={"Range": f"bytes={start}-{end}"}) as response:
            body = await response.read()
            _expect(response, 206)
            if len(body) != end - start + 1:
                raise client.PullFailed(f"Range read of {url}: {len(body)} bytes for {end - start + 1}")
    elif action == "full":
        await client.fetch_blob(session, url, blob.digest)
    elif action == "missing":
        async with session.get(f"{edge.url}/v2/{name}/blobs/{MISSING}") as response:
            await response.read()
            _expect(response, 404)
    else:  # hang_up: read a little, then drop the connection instead of returning it to the pool
        async with session.get(url) as response:
            await response.content.read(64 * 1024)
            response.close()


def _expect(response: aiohttp.ClientResponse, status: int) -> None:
    if response.status != status:
        raise client.PullFailed(f"{response.method} {response.url}: {response.status}, expected {status}")


async def _traffic(edge: Edge, images: list[Any], seconds: float) -> dict[str, Any]:
    counts: dict[str, int] = {action: 0 for action, _ in MIX}
    failures: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    actions = [action for action, _ in MIX]
    weights = [weight for _, weight in MIX]

    async def worker(index: int) -> None:
        rng = random.Random(700 + index)
        async with client.new_session(connections=8) as session:
            while time.monotonic() < deadline:
                action = rng.choices(actions, weights)[0]
                try:
                    await asyncio.wait_for(_one(session, edge, action, rng.choice(images), rng), 300)
                    counts[action] += 1
                except (client.PullFailed, aiohttp.ClientError, asyncio.TimeoutError) as error:
                    key = f"{action}: {type(error).__name__}"
                    failures[key] = failures.get(key, 0) + 1

    await asyncio.gather(*(worker(index) for index in range(CLIENTS)))
    return {"requests": counts, "failures": failures}


def soak(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    minutes = bench.soak_minutes
    if sizes.mode == "quick" or minutes <= 0:
        return {"skipped": "quick mode" if sizes.mode == "quick" else "--soak-minutes 0"}
    layer = 24 * MIB if sizes.mode == "full" else 8 * MIB
    specs = [(f"bench/soak-{index}", [layer, layer // 3, MIB], 900 + index, None) for index in range(16)]
    built = bench.images(specs)
    for (name, *_), image in zip(specs, built):
        image.name = name  # type: ignore[attr-defined]
    working_set = sum(image.total_bytes for image in built)
    cache = working_set // 2
    seconds = minutes * 60
    result: dict[str, Any] = {"minutes": minutes, "clients": CLIENTS, "working_set_mib": working_set / MIB,
                              "cache_mib": cache / MIB, "mix": dict(MIX)}
    with bench.scope():
        edge, _ = bench.edge("soak", cache_size=str(cache))
        with _Sampler(edge.process.pid) as sampler:
            result.update(asyncio.run(_traffic(edge, built, seconds)))
        time.sleep(3)
        result["fds_after_clients_stopped"] = len(os.listdir(f"/proc/{edge.process.pid}/fd"))
        metrics = edge.metrics()
        result["responses_in_flight_after"] = metrics.get("mirror_blob_responses_in_flight")
        result["status_5xx"] = sum(value for key, value in metrics.items()
                                   if key.startswith("mirror_http_requests_total") and 'status="5' in key)
    series = sampler.series
    result["series"] = [{"t": round(t, 1), "rss_mib": round(rss / MIB, 1), "anon_mib": round(anon / MIB, 1),
                         "file_mib": round(file / MIB, 1), "fds": fds}
                        for (t, rss, fds), (anon, file) in zip(series, sampler.split)]
    warm_up = min(max(60.0, seconds / 10), seconds / 4)
    after_warm_up = next((sample for sample in series if sample[0] >= warm_up), series[-1])
    first_half = [sample for sample in series if warm_up <= sample[0] < seconds / 2] or [after_warm_up]
    second_half = [sample for sample in series if sample[0] >= seconds / 2] or series[-1:]
    result["rss_after_warm_up_mib"] = after_warm_up[1] / MIB
    result["max_rss_second_half_mib"] = max(sample[1] for sample in second_half) / MIB
    result["max_rss_first_half_mib"] = max(sample[1] for sample in first_half) / MIB
    result["rss_growth_ratio"] = max(sample[1] for sample in second_half) / max(sample[1] for sample in first_half)
    result["rss_at_warm_up_ratio"] = max(sample[1] for sample in second_half) / after_warm_up[1]
    result["fd_growth"] = max(sample[2] for sample in second_half) - max(sample[2] for sample in first_half)
    total = sum(result["requests"].values())
    bench.progress.step(f"soak {minutes:g} min: {total} requests, {sum(result['failures'].values())} failures; RSS "
                        f"{result['rss_after_warm_up_mib']:.0f} → max {result['max_rss_second_half_mib']:.0f} MiB "
                        f"(ratio {result['rss_growth_ratio']:.3f}), fd growth {result['fd_growth']}")
    return result
