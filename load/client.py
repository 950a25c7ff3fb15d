"""A pull client that behaves like a container runtime, on aiohttp (C-accelerated HTTP parsing, so the client's
own CPU disturbs the 2-core measurements as little as possible).

A pull is: GET the manifest by tag (OCI and Docker Accept headers), verify it against Docker-Content-Digest,
then GET config and layers in parallel (bounded), each verified against its digest. Every pull has a timeout;
nothing here loops on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class PullFailed(Exception):
    pass


@dataclass
class BlobTiming:
    digest: str
    bytes: int
    ttfb: float  # from sending the GET to the first body byte
    seconds: float  # from sending the GET to the last byte


@dataclass
class PullResult:
    seconds: float
    bytes: int
    manifest_seconds: float
    blobs: list[BlobTiming]

    @property
    def largest(self) -> BlobTiming:
        return max(self.blobs, key=lambda blob: blob.bytes)


def new_session(connections: int = 64) -> aiohttp.ClientSession:
    """One runtime's HTTP client: keep-alive pool of `connections`, generous but finite timeouts."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections, ttl_dns_cache=None),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
        auto_decompress=False,
    )


async def fetch_blob(session: aiohttp.ClientSession, url: str, digest: str, headers: dict[str, str] | None = None) -> BlobTiming:
    """GET a blob, hashing it as it arrives; raise PullFailed on a bad status or a digest mismatch."""
    hasher = hashlib.sha256()
    size = 0
    started = time.perf_counter()
    first = 0.0
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            raise PullFailed(f"GET {url}: {response.status} {(await response.read())[:200]!r}")
        async for chunk in response.content.iter_any():
            if not first:
                first = time.perf_counter() - started
            hasher.update(chunk)
            size += len(chunk)
    if f"sha256:{hasher.hexdigest()}" != digest:
        raise PullFailed(f"{url}: {size} bytes that do not hash to {digest}")
    return BlobTiming(digest, size, first, time.perf_counter() - started)


async def _manifest(session: aiohttp.ClientSession, url: str) -> tuple[dict[str, Any], int]:
    async with session.get(url, headers={"Accept": ACCEPT}) as response:
        body = await response.read()
        if response.status != 200:
            raise PullFailed(f"GET {url}: {response.status} {body[:200]!r}")
        announced = response.headers.get("Docker-Content-Digest")
    if announced and announced != f"sha256:{hashlib.sha256(body).hexdigest()}":
        raise PullFailed(f"{url}: manifest does not hash to its Docker-Content-Digest {announced}")
    return orjson.loads(body), len(body)


async def pull(session: aiohttp.ClientSession, base_url: str, name: str, tag: str, parallel: int = 8,
               timeout: float = 900) -> PullResult:
    """Pull `name:tag` (the linux/amd64 entry of an index) from `base_url` like a runtime does."""
    return await asyncio.wait_for(_pull(session, base_url, name, tag, parallel), timeout)


async def _pull(session: aiohttp.ClientSession, base_url: str, name: str, tag: str, parallel: int) -> PullResult:
    started = time.perf_counter()
    manifest, size = await _manifest(session, f"{base_url}/v2/{name}/manifests/{tag}")
    if "manifests" in manifest:
        chosen = next(m for m in manifest["manifests"] if m.get("platform", {}).get("architecture", "amd64") == "amd64")
        manifest, more = await _manifest(session, f"{base_url}/v2/{name}/manifests/{chosen['digest']}")
        size += more
    manifest_seconds = time.perf_counter() - started
    gate = asyncio.Semaphore(parallel)

    async def one(descriptor: dict[str, Any]) -> BlobTiming:
        async with gate:
            return await fetch_blob(session, f"{base_url}/v2/{name}/blobs/{descriptor['digest']}", descriptor["digest"])

    blobs = list(await asyncio.gather(*(one(d) for d in [manifest["config"], *manifest["layers"]])))
    return PullResult(time.perf_counter() - started, size + sum(b.bytes for b in blobs), manifest_seconds, blobs)


async def herd(base_url: str, name: str, pulls: int, connections: int = 8, timeout: float = 900) -> list[float]:
    """Seconds of `pulls` simultaneous pulls of `name:v1`, each from its own client with `connections` connections
    and as many blobs at once (like separate nodes' runtimes), all released at the same instant."""
    start = asyncio.Event()

    async def one() -> float:
        async with new_session(connections=connections) as session:
            await start.wait()
            return (await pull(session, base_url, name, "v1", parallel=connections, timeout=timeout)).seconds

    tasks = [asyncio.create_task(one()) for _ in range(pulls)]
    await asyncio.sleep(0.05)
    start.set()
    return list(await asyncio.gather(*tasks))
