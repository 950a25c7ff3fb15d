"""Warm scenarios: the content is already cached on the serving node, so what is measured is local serving.

- `warm_blob`: one cached blob, N concurrent full GETs (`blob_load`: wrk's 8 KiB reads cap it near 1 GB/s);
  bytes/s of the edge, nginx (sendfile of the very file the edge cached: the local-serving limit) and a
  registry:2 proxy (its filesystem copy).
- `warm_manifest`: manifest GET by tag (wrk) and HEAD by digest (`head_load`, as wrk cannot read HEAD
  answers); requests/s of the edge and a registry:2 proxy.

Contenders take turns in a rotating order, every round; the medians over rounds are reported.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from typing import Any

from load.bench import Bench
from load.client import ACCEPT
from load.measure import blob_load, median, ratio, wrk


def _rotations(names: list[str], rounds: int) -> list[list[str]]:
    return [names[r % len(names):] + names[: r % len(names)] for r in range(rounds)]


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"GET {url}: {error.code} {error.read()[:300]!r}") from None


def _warm(url: str, headers: dict[str, str] | None = None, attempts: int = 5) -> bytes:
    """GET `url` until it answers (at most `attempts` times, 1 s apart): the unmeasured warm-up.

    A registry:2 proxy whose remote call fails (a timeout on a loaded machine) falls back to its empty local
    store and answers 404 for a tag that exists; that is not what the scenario measures.
    """
    for _ in range(attempts - 1):
        try:
            return _get(url, headers)
        except RuntimeError:
            time.sleep(1)
    return _get(url, headers)


def warm_blob(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    image = bench.image("bench/warm-blob", [sizes.warm_blob], seed=101)
    blob = image.layers[0]
    with bench.scope():
        edge, _ = bench.edge("warm-blob")
        proxy, _ = bench.proxy("warm-blob")
        urls = {name: f"{server.url}/v2/bench/warm-blob/blobs/{blob.digest}" for name, server in (("edge", edge), ("registry_proxy", proxy))}
        for url in urls.values():
            if len(_warm(url)) != blob.size:  # the cold fill, not measured
                raise RuntimeError(f"{url} answered a short blob")
        bench.progress.step(f"{blob.size >> 20} MiB blob cached on the edge and the registry:2 proxy")
        cached = [path for path in edge.content_files() if path.stat().st_size == blob.size]
        if not cached:
            raise RuntimeError("could not find the edge's cached file for the blob")
        root = bench.workdir / "nginx-root"
        root.mkdir(exist_ok=True)
        (root / "blob").unlink(missing_ok=True)
        os.link(cached[0], root / "blob")  # the very file the edge serves
        urls["nginx"] = f"{bench.nginx(root).url}/blob"

        samples: dict[str, dict[str, list[float]]] = {name: {str(n): [] for n in sizes.warm_blob_connections} for name in urls}
        for round_index, order in enumerate(_rotations(list(urls), sizes.repeats)):
            for connections in sizes.warm_blob_connections:
                for name in order:
                    rate, errors = blob_load(urls[name], sizes.load_seconds, connections)
                    if errors:
                        raise RuntimeError(f"{name} failed {errors} connections during warm_blob")
                    samples[name][str(connections)].append(rate)
            bench.progress.step(f"round {round_index + 1}/{sizes.repeats}: " + ", ".join(
                f"{name} " + "/".join(f"{v[-1] / 1e9:.2f}" for v in by_n.values()) for name, by_n in samples.items())
                + f" GB/s with {'/'.join(map(str, sizes.warm_blob_connections))} connections")
    per_n = {name: {n: median(values) for n, values in by_n.items()} for name, by_n in samples.items()}
    headline = str(max(sizes.warm_blob_connections))
    at_n = {name: values[headline] for name, values in per_n.items()}
    return {
        "blob_bytes": blob.size,
        "connections": headline,
        "bytes_per_second": at_n,
        "bytes_per_second_by_connections": per_n,
        "samples": samples,
        "ratio_vs_nginx": ratio(at_n["edge"], at_n["nginx"]),
        "ratio_vs_registry_proxy": ratio(at_n["edge"], at_n["registry_proxy"]),
    }


async def head_load(url: str, seconds: float, connections: int, headers: dict[str, str]) -> tuple[float, int]:
    """HEAD `url` over `connections` keep-alive sockets for `seconds`; returns (requests/s, errors).

    A bare asyncio client: it writes the request, reads the header block, and goes again (a HEAD answer has
    no body), so it stays cheap enough not to be the bottleneck at the rates measured here.
    """
    host, _, rest = url.removeprefix("http://").partition("/")
    address, _, port = host.partition(":")
    extra = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    request = f"HEAD /{rest} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    deadline = time.monotonic() + seconds
    counts = {"ok": 0, "errors": 0}

    async def one() -> None:
        reader, writer = await asyncio.open_connection(address, int(port or 80))
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
                counts["ok" if head[9:10] == b"2" else "errors"] += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(connections)))
    return counts["ok"] / (time.monotonic() - started), counts["errors"]


def warm_manifest(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    image = bench.image("bench/warm-manifest", [64 * 1024], seed=102)
    path_by_tag = "/v2/bench/warm-manifest/manifests/v1"
    path_by_digest = f"/v2/bench/warm-manifest/manifests/{image.manifest_digest}"
    with bench.scope():
        edge, _ = bench.edge("warm-manifest")
        proxy, _ = bench.proxy("warm-manifest")
        servers = {"edge": edge.url, "registry_proxy": proxy.url}
        for url in servers.values():
            _warm(url + path_by_tag, {"Accept": ACCEPT})  # the manifest is now cached on both
        samples: dict[str, dict[str, list[float]]] = {name: {"get_by_tag": [], "head_by_digest": []} for name in servers}
        for round_index, order in enumerate(_rotations(list(servers), sizes.repeats)):
            for name in order:
                result = wrk(servers[name] + path_by_tag, sizes.load_seconds, sizes.manifest_connections,
                             headers={"Accept": ACCEPT}, workdir=bench.workdir)
                head_rate, head_errors = asyncio.run(head_load(servers[name] + path_by_digest, sizes.load_seconds,
                                                               sizes.manifest_connections, {"Accept": ACCEPT}))
                if result.errors or head_errors:
                    raise RuntimeError(f"{name} answered errors during warm_manifest ({result.errors}, {head_errors})")
                samples[name]["get_by_tag"].append(result.requests_per_second)
                samples[name]["head_by_digest"].append(head_rate)
            bench.progress.step(f"round {round_index + 1}/{sizes.repeats}: " + ", ".join(
                f"{name} {kinds['get_by_tag'][-1]:.0f} GET/s by tag, {kinds['head_by_digest'][-1]:.0f} HEAD/s by digest"
                for name, kinds in samples.items()))
    medians = {name: {kind: median(values) for kind, values in kinds.items()} for name, kinds in samples.items()}
    return {
        "connections": sizes.manifest_connections,
        "requests_per_second": medians,
        "samples": samples,
        "ratio_vs_registry_proxy": ratio(medians["edge"]["get_by_tag"], medians["registry_proxy"]["get_by_tag"]),
        "head_ratio_vs_registry_proxy": ratio(medians["edge"]["head_by_digest"], medians["registry_proxy"]["head_by_digest"]),
    }
