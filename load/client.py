"""A pull client that behaves like a container runtime: manifest by tag, then config and layers in parallel,
every blob verified against its digest. Bounded concurrency and timeouts; it never loops on its own."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

import httpx
import orjson

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass
class PullResult:
    seconds: float
    bytes: int
    largest_blob_ttfb: float


class PullFailed(Exception):
    pass


async def _fetch_blob(client: httpx.AsyncClient, url: str, digest: str) -> tuple[int, float]:
    hasher = hashlib.sha256()
    size = 0
    started = time.perf_counter()
    first_byte = 0.0
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise PullFailed(f"GET {url}: {response.status_code}")
        async for chunk in response.aiter_raw(1 << 20):
            if not first_byte:
                first_byte = time.perf_counter() - started
            hasher.update(chunk)
            size += len(chunk)
    if "sha256:" + hasher.hexdigest() != digest:
        raise PullFailed(f"{url}: content does not match {digest}")
    return size, first_byte


async def pull(client: httpx.AsyncClient, base_url: str, name: str, tag: str, parallel: int = 4) -> PullResult:
    """Pull `name:tag` (linux/amd64 of an index) from `base_url`; raise PullFailed on any error."""
    started = time.perf_counter()
    response = await client.get(f"{base_url}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
    if response.status_code != 200:
        raise PullFailed(f"manifest {name}:{tag}: {response.status_code} {response.text[:200]}")
    manifest = orjson.loads(response.content)
    if "manifests" in manifest:
        chosen = next(m for m in manifest["manifests"] if m.get("platform", {}).get("architecture") == "amd64")
        response = await client.get(f"{base_url}/v2/{name}/manifests/{chosen['digest']}", headers={"Accept": ACCEPT})
        manifest = orjson.loads(response.content)
    blobs = [manifest["config"], *manifest["layers"]]
    largest = max(blobs, key=lambda blob: blob["size"])["digest"]
    gate = asyncio.Semaphore(parallel)
    ttfb = 0.0

    async def one(descriptor: dict) -> int:
        nonlocal ttfb
        async with gate:
            size, first_byte = await _fetch_blob(client, f"{base_url}/v2/{name}/blobs/{descriptor['digest']}", descriptor["digest"])
        if descriptor["digest"] == largest:
            ttfb = first_byte
        return size

    sizes = await asyncio.gather(*(one(blob) for blob in blobs))
    return PullResult(seconds=time.perf_counter() - started, bytes=sum(sizes), largest_blob_ttfb=ttfb)


def new_client(connections: int = 64) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=httpx.Limits(max_connections=connections))
