"""`cold_range`: what a lazy-pulling snapshotter (stargz, SOCI) or a resumed download asks of a cold blob.

Per contender, on a blob nobody has cached: the time to the eStargz footer (``Range: bytes=-51``, the first
thing a lazy puller reads), then to 16 scattered 64 KiB ranges read at once (the files a container opens first).
registry:2 direct answers ranges from S3 as they come; its proxy mode and the edge fill the whole blob behind.
Each contender gets a blob of its own (same size), so every one starts cold.

Then the trickle (issue 23, goal 6), on the edge and one more cold blob: 48 random 64 KiB ranges arriving two at
a time, as a lazy puller reads while the container opens its files, then the whole blob (its answer ends when
the fill behind the ranges is done). `trickle_bucket_bytes_over_blob` is what the edge read from the bucket for
it over the blob's size: 1.0 when no byte was fetched twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp

from load import client
from load.bench import Bench
from load.components import Edge
from load.measure import pull_backend_bytes, ratio

FOOTER = 51  # bytes of an eStargz footer
RANGES = 16
RANGE_BYTES = 64 * 1024
TRICKLE_RANGES = 48
TRICKLE_AT_ONCE = 2


async def _get_range(session: aiohttp.ClientSession, url: str, header: str, expected: int, size: int) -> float:
    """Seconds until the client holds the range; a whole-blob 200 (registry:2's proxy on a cold blob ignores
    Range) counts as what it is: the range arrives with the last byte of the blob."""
    started = time.perf_counter()
    async with session.get(url, headers={"Range": header}) as response:
        body = await response.read()
        ok = (response.status == 206 and len(body) == expected) or (response.status == 200 and len(body) == size)
        if not ok:
            raise client.PullFailed(f"GET {url} Range {header}: {response.status}, {len(body)} bytes")
    return time.perf_counter() - started


async def _lazy_read(url: str, size: int, seed: int) -> dict[str, float]:
    chooser = random.Random(seed)
    starts = sorted(chooser.randrange(0, size - RANGE_BYTES) for _ in range(RANGES))
    async with client.new_session(connections=RANGES + 1) as session:
        await (await session.get(url.split("/v2/", 1)[0] + "/v2/")).release()  # a runtime has its connection open
        footer = await _get_range(session, url, f"bytes=-{FOOTER}", FOOTER, size)
        started = time.perf_counter()
        await asyncio.gather(*(_get_range(session, url, f"bytes={s}-{s + RANGE_BYTES - 1}", RANGE_BYTES, size) for s in starts))
        return {"footer_seconds": footer, "ranges_seconds": time.perf_counter() - started,
                "footer_and_ranges_seconds": footer + time.perf_counter() - started}


async def _trickle(url: str, digest: str, size: int, seed: int) -> None:
    """Random ranges `TRICKLE_AT_ONCE` at a time, then the whole blob (checked against its digest)."""
    chooser = random.Random(seed)
    starts = [chooser.randrange(0, size - RANGE_BYTES) for _ in range(TRICKLE_RANGES)]
    async with client.new_session(connections=TRICKLE_AT_ONCE + 1) as session:
        for first in range(0, len(starts), TRICKLE_AT_ONCE):
            await asyncio.gather(*(_get_range(session, url, f"bytes={start}-{start + RANGE_BYTES - 1}", RANGE_BYTES, size)
                                   for start in starts[first:first + TRICKLE_AT_ONCE]))
        await client.fetch_blob(session, url, digest)


def _trickled(bench: Bench, edge: Edge, name: str, layer: Any) -> float:
    """The edge's bucket bytes for the trickle over the blob's size."""
    before = pull_backend_bytes(edge.metrics())
    asyncio.run(_trickle(f"{edge.url}/v2/{name}/blobs/{layer.digest}", layer.digest, layer.size, seed=99))
    ratio_read = (pull_backend_bytes(edge.metrics()) - before) / layer.size
    bench.progress.step(f"edge: {TRICKLE_RANGES} ranges {TRICKLE_AT_ONCE} at a time, then the blob: "
                        f"bucket bytes {ratio_read:.3f}x the blob")
    return ratio_read


def cold_range(bench: Bench) -> dict[str, Any]:
    size = bench.sizes.range_blob
    contenders = ["edge", "registry_direct", "registry_proxy"]
    built = bench.images([(f"bench/range-{index}", [size], 400 + index, None) for index in range(len(contenders) + 1)])
    results: dict[str, dict[str, float]] = {}
    failures: dict[str, str] = {}
    with bench.scope():
        servers = {"edge": bench.edge("range")[0], "registry_direct": bench.central("range-direct")[0],
                   "registry_proxy": bench.proxy("range")[0]}
        for index, name in enumerate(contenders):
            layer = built[index].layers[0]
            url = f"{servers[name].url}/v2/bench/range-{index}/blobs/{layer.digest}"
            try:
                results[name] = asyncio.run(_lazy_read(url, layer.size, seed=index))
            except client.PullFailed as error:
                failures[name] = str(error)
                bench.progress.step(f"{name}: failed: {error}")
                continue
            bench.progress.step(f"{name}: footer {results[name]['footer_seconds'] * 1000:.0f} ms, "
                                f"{RANGES} ranges {results[name]['ranges_seconds'] * 1000:.0f} ms")
        trickle = _trickled(bench, servers["edge"], f"bench/range-{len(contenders)}", built[-1].layers[0])
    both = results.get("edge", {}).get("footer_and_ranges_seconds")
    return {
        "blob_bytes": size,
        **results,
        "failures": failures,
        "trickle_bucket_bytes_over_blob": trickle,
        "footer_seconds": {name: values["footer_seconds"] for name, values in results.items()},
        "ranges_seconds": {name: values["ranges_seconds"] for name, values in results.items()},
        **{f"speedup_vs_{name}": ratio(results[name]["footer_and_ranges_seconds"], both)
           for name in ("registry_direct", "registry_proxy") if name in results and both},
    }
