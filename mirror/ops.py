"""Operator commands against a running edge: ``warm``, ``purge``, ``stats``.

``warm`` is a client of the edge's registry API: it pulls each image (every platform of an index, or only
``--platform``) through the edge and drops the bytes, so the node's cache holds it — and, for an image of a remote
route, the bucket too (the edge writes it back). ``purge`` and ``stats`` call the admin endpoint, which must be
enabled on the edge (``[admin] enabled``, with the token given by ``--token`` or the config's ``admin.token``).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote, urlencode

from mirror.domain import Problem
from mirror.mediatypes import MANIFEST_TYPES
from mirror.reference import ImageReference, parse_image

# The edge is on this node: never send its traffic through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
READ_CHUNK = 1024 * 1024
PARALLEL_BLOBS = 4
TIMEOUT = 600


class OperationFailed(Exception):
    """The edge refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        return _OPENER.open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        detail = error.read(2048).decode(errors="replace")
        raise OperationFailed(f"{method} {url}: {error.code} {detail}") from None
    except OSError as error:
        raise OperationFailed(f"{method} {url}: {error}") from None


# -- warm ---------------------------------------------------------------------------------------------------


def warm(edge: str, images: list[str], platform: str | None, out: TextIO = sys.stdout) -> int:
    """Pull every image through the edge; progress lines on `out`. Non-zero when an image failed."""
    failed = 0
    for text in images:
        try:
            image = parse_image(text)
            blobs = _collect(edge, image, platform, out)
            total = sum(blob.size for blob in blobs)
            done = 0
            with ThreadPoolExecutor(PARALLEL_BLOBS) as pool:
                for index, size in enumerate(pool.map(lambda blob: _drain_blob(edge, image, blob), blobs), start=1):
                    done += size
                    out.write(f"{text}: [{index}/{len(blobs)}] {_bar(done, total)} {done / 1e6:.1f}/{total / 1e6:.1f} MB\n")
                    out.flush()
            out.write(f"{text}: warm ({len(blobs)} blobs, {total / 1e6:.1f} MB)\n")
        except (OperationFailed, Problem, KeyError, ValueError) as error:  # one bad image must not stop the others
            failed += 1
            out.write(f"{text}: FAILED: {error}\n")
    return 1 if failed else 0


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = width if not total else width * done // total
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _url(edge: str, image: ImageReference, kind: str, reference: str) -> str:
    query = f"?{urlencode({'ns': image.host})}" if image.host else ""
    return f"{edge}/v2/{image.name}/{kind}/{quote(reference)}{query}"


def _manifest(edge: str, image: ImageReference, reference: str) -> dict[str, Any]:
    with _request(_url(edge, image, "manifests", reference), headers={"Accept": ", ".join(MANIFEST_TYPES)}) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


def _collect(edge: str, image: ImageReference, platform: str | None, out: TextIO) -> list[Blob]:
    """The blobs of the image (every platform of an index, or only `platform`), fetching its manifests."""
    top = _manifest(edge, image, str(image.digest) if image.digest else image.tag or "latest")
    documents = [top]
    for child in top.get("manifests") or []:
        wanted = child.get("platform") or {}
        name = f"{wanted.get('os')}/{wanted.get('architecture')}" + (f"/{wanted['variant']}" if wanted.get("variant") else "")
        if platform is None or name == platform or name.startswith(platform + "/"):
            out.write(f"{image.name}: manifest for {name}\n")
            documents.append(_manifest(edge, image, child["digest"]))
    blobs: dict[str, Blob] = {}
    for document in documents:
        for descriptor in [document.get("config"), *(document.get("layers") or [])]:
            if isinstance(descriptor, dict) and "digest" in descriptor and not descriptor.get("urls"):
                blobs[descriptor["digest"]] = Blob(descriptor["digest"], int(descriptor.get("size", 0)))
    return list(blobs.values())


def _drain_blob(edge: str, image: ImageReference, blob: Blob) -> int:
    read = 0
    with _request(_url(edge, image, "blobs", blob.digest)) as response:
        while chunk := response.read(READ_CHUNK):
            read += len(chunk)
    return read


# -- purge and stats (admin endpoint) -----------------------------------------------------------------------


def purge(edge: str, token: str, references: list[str], out: TextIO = sys.stdout) -> int:
    for reference in references:
        url = f"{edge}/admin/purge?{urlencode({'image': reference})}"
        with _request(url, "POST", {"Authorization": f"Bearer {token}"}) as response:
            answer = json.loads(response.read())
        out.write(f"{reference}: dropped {len(answer['dropped'])} objects from {answer['repository']} on this node\n")
    return 0


def stats(edge: str, token: str, as_json: bool, out: TextIO = sys.stdout) -> int:
    with _request(f"{edge}/admin/stats", headers={"Authorization": f"Bearer {token}"}) as response:
        answer = json.loads(response.read())
    if as_json:
        out.write(json.dumps(answer, indent=2) + "\n")
        return 0
    cache, requests, sent = answer["cache"], answer["requests"], answer["bytes"]
    out.write(f"cache: {cache['bytes'] / 1e6:.1f} MB of {cache['limit'] / 1e6:.1f} MB\n")
    out.write(f"hit ratio by requests: {_percent(requests['hit_ratio'])} ({requests['hits']} hits, {requests['misses']} misses)\n")
    out.write(f"hit ratio by bytes: {_percent(sent['hit_ratio'])} ({sent['from_cache'] / 1e6:.1f} MB from cache, "
              f"{sent['from_fill'] / 1e6:.1f} MB filled)\n")
    out.write("top repositories:\n")
    for entry in answer["top_repositories"]:
        out.write(f"  {entry['name']}: {entry['requests']} requests, {entry['bytes'] / 1e6:.1f} MB\n")
    for route in answer["routes"]:
        out.write(f"route {route['ns']} → {route['prefix']}/: ratelimit-remaining {route['ratelimit_remaining']}, "
                  f"stale tags served {int(route['stale_tags_served'])}\n")
    out.write(f"write-backs pending: {answer['writeback_pending']}\n")
    return 0


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.1f}%"
