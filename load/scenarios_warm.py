"""Warm scenarios: content already cached on the serving node; what is measured is local serving speed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from load.bench import Bench, median, wrk, wrk_script
from load.client import ACCEPT

BLOB_CONNECTIONS = 4
MANIFEST_CONNECTIONS = 16


def _largest_file(directory: Path) -> Path:
    files = [Path(root) / name for root, _, names in os.walk(directory) for name in names if name.endswith(".val")]
    return max(files, key=lambda path: path.stat().st_size)


def warm_blob(bench: Bench) -> dict[str, Any]:
    """One cached blob, N concurrent full GETs; bytes per second of the edge, nginx and a registry:2 proxy."""
    world, sizes = bench.world, bench.sizes
    image = bench.push_image("bench/warm-blob", [sizes.warm_blob], seed=1)
    digest = image.layer_digests[0]
    edge = world.edge("warm-blob", world.emulator("warm-blob-edge"))
    proxy = world.proxy("warm-blob", world.central("warm-blob", world.emulator("warm-blob-central")))
    urls = {name: f"{server.url}/v2/bench/warm-blob/blobs/{digest}" for name, server in (("edge", edge), ("registry_proxy", proxy))}
    for url in urls.values():
        httpx.get(url, timeout=600).raise_for_status()  # the cold fill; not measured

    nginx_root = bench.workdir / "nginx-root"
    nginx_root.mkdir(parents=True, exist_ok=True)
    os.link(_largest_file(edge.workdir / "cache" / "content"), nginx_root / "blob")
    urls["nginx"] = f"{world.nginx(nginx_root).url}/blob"

    samples: dict[str, list[float]] = {name: [] for name in urls}
    for repeat in range(sizes.repeats):
        for name, url in urls.items():
            result = wrk(url, sizes.wrk_seconds, BLOB_CONNECTIONS)
            if result.non_2xx:
                raise RuntimeError(f"{name} answered errors during warm_blob")
            samples[name].append(result.bytes_per_second)
        bench.progress.step(f"warm_blob round {repeat + 1}/{sizes.repeats}: " + ", ".join(
            f"{name} {values[-1] / 1e9:.2f} GB/s" for name, values in samples.items()))
    medians = {name: median(values) for name, values in samples.items()}
    return {
        "blob_bytes": sizes.warm_blob,
        "connections": BLOB_CONNECTIONS,
        "bytes_per_second": medians,
        "samples": samples,
        "ratio_vs_nginx": medians["edge"] / medians["nginx"],
        "ratio_vs_registry_proxy": medians["edge"] / medians["registry_proxy"],
    }


def warm_manifest(bench: Bench) -> dict[str, Any]:
    """Manifest GET by tag and by digest, requests per second of the edge and a registry:2 proxy.

    By digest is measured with GET: wrk waits for a body after a HEAD response (it does not know the method),
    so HEAD cannot be timed with it."""
    world, sizes = bench.world, bench.sizes
    image = bench.push_image("bench/warm-manifest", [10_000], seed=2)
    edge = world.edge("warm-manifest", world.emulator("warm-manifest-edge"))
    proxy = world.proxy("warm-manifest", world.central("warm-manifest", world.emulator("warm-manifest-central")))
    get_script = wrk_script(bench.workdir / "get-manifest.lua", "GET", {"Accept": ACCEPT})
    servers = {"edge": edge.url, "registry_proxy": proxy.url}
    for url in servers.values():
        httpx.get(f"{url}/v2/bench/warm-manifest/manifests/v1", headers={"Accept": ACCEPT}, timeout=60).raise_for_status()

    samples: dict[str, dict[str, list[float]]] = {name: {"get_by_tag": [], "get_by_digest": []} for name in servers}
    for repeat in range(sizes.repeats):
        for name, url in servers.items():
            by_tag = wrk(f"{url}/v2/bench/warm-manifest/manifests/v1", sizes.wrk_seconds, MANIFEST_CONNECTIONS, get_script)
            by_digest = wrk(
                f"{url}/v2/bench/warm-manifest/manifests/{image.manifest_digest}", sizes.wrk_seconds, MANIFEST_CONNECTIONS, get_script
            )
            if by_tag.non_2xx or by_digest.non_2xx:
                raise RuntimeError(f"{name} answered errors during warm_manifest")
            samples[name]["get_by_tag"].append(by_tag.requests_per_second)
            samples[name]["get_by_digest"].append(by_digest.requests_per_second)
        bench.progress.step(f"warm_manifest round {repeat + 1}/{sizes.repeats}: " + ", ".join(
            f"{name} {values['get_by_tag'][-1]:.0f} req/s by tag" for name, values in samples.items()))
    medians = {name: {kind: median(values) for kind, values in kinds.items()} for name, kinds in samples.items()}
    return {
        "connections": MANIFEST_CONNECTIONS,
        "requests_per_second": medians,
        "samples": samples,
        "ratio_vs_registry_proxy": medians["edge"]["get_by_tag"] / medians["registry_proxy"]["get_by_tag"],
        "by_digest_ratio_vs_registry_proxy": medians["edge"]["get_by_digest"] / medians["registry_proxy"]["get_by_digest"],
    }
