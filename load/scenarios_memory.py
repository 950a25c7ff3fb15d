"""`memory`: the edge's peak resident memory during four concurrent cold fills of big blobs, and (on a fresh
edge) during a big push (POST an upload session, one streamed PATCH, PUT ?digest=, the way docker pushes a layer).

RSS is sampled from /proc every 20 ms in a thread; the push is skipped (with the reason recorded) when the edge
answers the upload POST with anything but 202.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp

from load import client
from load.bench import Bench
from load.components import Edge, Registry2
from load.procs import RssSampler
from load.scenarios_cold import cold_shape

MIB = 1024 * 1024
PUSH_CHUNK = 1 * MIB
PUSH_BLOCK = 16 * MIB  # the random bytes a pushed body is sliced from
PUSH_STEP = PUSH_CHUNK + 4099  # odd: over a power-of-two block, each piece starts at an offset of its own


async def _fills(edge: Edge, blobs: list[tuple[str, str]]) -> float:
    async with client.new_session() as session:
        started = time.perf_counter()
        await asyncio.gather(*(client.fetch_blob(session, f"{edge.url}/v2/{name}/blobs/{digest}", digest) for name, digest in blobs))
        return time.perf_counter() - started


def _random_stream(size: int, seed: int) -> tuple[str, AsyncIterator[bytes]]:
    """The digest of `size` seeded pseudo-random bytes, and an async generator that yields those same bytes.

    Each PUSH_CHUNK piece is a slice of one seeded random block, starting where no other piece starts (the step
    between pieces is odd, the block a power of two), so no two pieces are alike and nothing compresses. Drawing
    fresh random bytes for every piece cost the sender about 4 CPU-s per GiB, on the two cores the edge and the
    bucket share with it: a sender that slow hands the edge smaller reads than a client sending a layer file
    does, and each read costs the edge Python work (``load/floorstack.py``)."""
    block = random.Random(seed).randbytes(PUSH_BLOCK + PUSH_CHUNK)

    def pieces() -> Iterator[bytes]:
        for index, offset in enumerate(range(0, size, PUSH_CHUNK)):
            start = index * PUSH_STEP % PUSH_BLOCK
            yield block[start : start + min(PUSH_CHUNK, size - offset)]

    hasher = hashlib.sha256()
    for piece in pieces():  # a first pass for the digest: cheap next to the upload itself
        hasher.update(piece)

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces():
            yield piece

    return f"sha256:{hasher.hexdigest()}", body()


async def push_blob(registry: Edge | Registry2, name: str, size: int, seed: int) -> dict[str, Any]:
    """Push `size` seeded random bytes as docker pushes a layer: POST, one streamed PATCH, PUT ?digest=.
    `seconds` runs from the PATCH's first byte to the PUT's answer (`patch_seconds`: to the PATCH's answer)."""
    digest, body = _random_stream(size, seed)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1800, sock_connect=10)) as session:
        async with session.post(f"{registry.url}/v2/{name}/blobs/uploads/") as response:
            if response.status != 202:
                return {"skipped": f"POST /v2/{name}/blobs/uploads/ answered {response.status}: push is not available"}
            location = response.headers["Location"]
        if location.startswith("/"):
            location = registry.url + location
        started = time.perf_counter()
        async with session.patch(location, data=body, headers={"Content-Type": "application/octet-stream"}) as response:
            if response.status != 202:
                raise RuntimeError(f"PATCH answered {response.status}: {(await response.read())[:300]!r}")
            location = response.headers["Location"]
        patched = time.perf_counter() - started
        if location.startswith("/"):
            location = registry.url + location
        separator = "&" if "?" in location else "?"
        async with session.put(f"{location}{separator}digest={digest}", headers={"Content-Length": "0"}) as response:
            if response.status != 201:
                raise RuntimeError(f"PUT answered {response.status}: {(await response.read())[:300]!r}")
        seconds = time.perf_counter() - started
    return {"bytes": size, "seconds": seconds, "patch_seconds": patched, "digest": digest}


def memory(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    # The cold_pull scenario's images (built once per run): their big layer is the blob each fill fetches.
    fill_images = bench.images([(f"bench/cold-{index}", cold_shape(sizes), 200 + index, None) for index in range(4)])
    result: dict[str, Any] = {"fill_bytes": sizes.cold_layer, "push_bytes": sizes.memory_push}
    with bench.scope():
        edge, link = bench.edge("memory")
        with RssSampler(edge.process.pid) as sampler:
            seconds = asyncio.run(_fills(edge, [(f"bench/cold-{i}", image.layers[0].digest) for i, image in enumerate(fill_images)]))
        result.update(baseline_rss_mib=sampler.baseline / MIB, fills_peak_rss_mib=sampler.peak / MIB, fills_seconds=seconds)
        bench.progress.step(f"4 concurrent {sizes.cold_layer >> 20} MiB fills in {seconds:.1f}s: peak RSS "
                            f"{sampler.peak / MIB:.0f} MiB (idle {sampler.baseline / MIB:.0f} MiB)")
    with bench.scope():  # a fresh edge: the fills' high-water mark (Python keeps freed memory) would hide the push's
        edge, link = bench.edge("memory-push")
        with RssSampler(edge.process.pid) as sampler:
            push = asyncio.run(push_blob(edge, "bench/memory-push", sizes.memory_push, seed=499))
        result["push"] = push
        if "skipped" in push:
            bench.progress.step(f"push skipped: {push['skipped']}")
            result["push_peak_rss_mib"] = None
        else:
            result["push_peak_rss_mib"] = sampler.peak / MIB
            result["push_bytes_up_through_link"] = link.stats()["bytes_up"]
            bench.progress.step(f"{sizes.memory_push >> 20} MiB push in {push['seconds']:.1f}s "
                                f"({sizes.memory_push / push['seconds'] / 1e6:.0f} MB/s): peak RSS {sampler.peak / MIB:.0f} MiB")
    result["peak_rss_mib"] = max(value for value in (result["fills_peak_rss_mib"], result["push_peak_rss_mib"]) if value is not None)
    return result
