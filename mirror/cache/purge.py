"""``edge-mirror purge``: drop an image (a manifest, the manifests an index lists, and their blobs) from this
node's cache, and forget its tag so the next lookup asks the source. The bucket is not touched."""

from __future__ import annotations

import os
from typing import Any

import orjson

from mirror.cache.edge import EdgeCache
from mirror.mediatypes import MANIFEST_MAX_SIZE
from mirror.reference import Digest, parse_digest
from mirror.domain import Problem

# An index lists manifests, which list blobs: nothing deeper is walked.
MAX_DEPTH = 2


async def purge(edge: EdgeCache, name: str, tag: str | None, digest: Digest | None) -> list[str]:
    """Drop `name:tag` or `name@digest` from the cache; the digests dropped (those held here)."""
    if tag is not None:
        digest = await edge.resolve_tag(name, tag)
        edge.links.forget_tag(name, tag)
    assert digest is not None
    dropped: list[str] = []
    _drop_manifest(edge, digest, dropped, MAX_DEPTH)
    return dropped


def _drop_manifest(edge: EdgeCache, digest: Digest, dropped: list[str], depth: int) -> None:
    data = _small_content(edge, digest)
    if edge.drop(digest):
        dropped.append(str(digest))
    if data is None:
        return
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(document, dict):
        return
    for child in _digests(document.get("manifests")):
        if depth > 0:
            _drop_manifest(edge, child, dropped, depth - 1)
    for blob in _digests([document.get("config"), *(document.get("layers") or [])]):
        if edge.drop(blob):
            dropped.append(str(blob))


def _small_content(edge: EdgeCache, digest: Digest) -> bytes | None:
    """The cached bytes of `digest` if it may be a manifest (a layer digest given by mistake is not read)."""
    cached = edge.store.open(digest)
    if cached is None:
        return None
    try:
        return os.pread(cached.fd, cached.size, 0) if cached.size <= MANIFEST_MAX_SIZE else None
    finally:
        cached.close()


def _digests(descriptors: Any) -> list[Digest]:
    found = []
    for descriptor in descriptors or []:
        if isinstance(descriptor, dict):
            try:
                found.append(parse_digest(str(descriptor.get("digest", ""))))
            except Problem:
                continue
    return found
