"""The referrers index format and the referrers list logic of spec.md ("Listing Referrers"). No I/O here.

An index entry is the descriptor the referrers API answers for one manifest, stored as JSON::

    {"mediaType": ..., "digest": ..., "size": ..., "artifactType": ..., "annotations": {...}}

``artifactType`` is the manifest's own ``artifactType``; for an image manifest without one, its config's
``mediaType``; for an index without one, absent. ``annotations`` are the manifest's, copied whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from mirror.mediatypes import MANIFEST_MAX_SIZE, OCI_INDEX, NotAManifest, manifest_media_type
from mirror.reference import Digest, parse_digest
from mirror.domain import Problem

# The referrers tag schema (spec.md "Referrers Tag Schema"): <alg>-<ref>, each truncated.
FALLBACK_ALGORITHM_LIMIT = 32
FALLBACK_ENCODED_LIMIT = 64

# One page of a referrers list is an image index; keep it within what a client accepts as a manifest.
PAGE_MAX_BYTES = MANIFEST_MAX_SIZE - 64 * 1024
PAGE_MAX_ENTRIES = 1000


class NotAReferrer(ValueError):
    """The bytes are not a manifest with a valid ``subject``."""


def subject_of(document: dict[str, Any]) -> Digest | None:
    """The digest a parsed manifest's ``subject`` names, if it has a valid one."""
    subject = document.get("subject")
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
        return None
    try:
        return parse_digest(subject["digest"])
    except Problem:
        return None


def descriptor(digest: Digest, data: bytes, media_type: str, document: dict[str, Any]) -> dict[str, Any]:
    """The referrers descriptor of the manifest `data` (parsed as `document`) stored as `digest`."""
    entry: dict[str, Any] = {"mediaType": media_type, "digest": str(digest), "size": len(data)}
    artifact_type = document.get("artifactType")
    if not (isinstance(artifact_type, str) and artifact_type) and media_type != OCI_INDEX:
        config = document.get("config")
        artifact_type = config.get("mediaType") if isinstance(config, dict) else None
    if isinstance(artifact_type, str) and artifact_type:
        entry["artifactType"] = artifact_type
    annotations = document.get("annotations")
    if isinstance(annotations, dict) and annotations:
        entry["annotations"] = annotations
    return entry


def parse_referrer(data: bytes, digest: Digest) -> tuple[Digest, dict[str, Any]]:
    """The subject and descriptor of the stored manifest `digest`; NotAReferrer when it has no valid subject."""
    try:
        media_type = manifest_media_type(data)
    except NotAManifest as error:
        raise NotAReferrer(str(error)) from None
    document = orjson.loads(data)
    subject = subject_of(document)
    if subject is None:
        raise NotAReferrer(f"{digest} has no valid subject")
    return subject, descriptor(digest, data, media_type, document)


def encode_entry(entry: dict[str, Any]) -> bytes:
    return orjson.dumps(entry)


def decode_entry(data: bytes, referrer: Digest) -> dict[str, Any] | None:
    """The descriptor stored in an index entry named after `referrer`; None when it is not a sound one."""
    try:
        entry = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or entry.get("digest") != str(referrer):
        return None
    if not isinstance(entry.get("mediaType"), str) or not isinstance(entry.get("size"), int):
        return None
    if not isinstance(entry.get("artifactType", ""), str) or not isinstance(entry.get("annotations", {}), dict):
        return None
    return entry


def fallback_tag(subject: Digest) -> str:
    """The tag clients keep the referrers of `subject` under when a registry has no referrers API."""
    return f"{subject.algorithm[:FALLBACK_ALGORITHM_LIMIT]}-{subject.hex[:FALLBACK_ENCODED_LIMIT]}"


def fallback_children(data: bytes) -> list[Digest]:
    """The manifest digests listed in a fallback tag's image index (anything else there is ignored)."""
    try:
        if manifest_media_type(data) != OCI_INDEX:
            return []
    except NotAManifest:
        return []
    manifests = orjson.loads(data).get("manifests")
    children: list[Digest] = []
    for item in manifests if isinstance(manifests, list) else []:
        if isinstance(item, dict) and isinstance(item.get("digest"), str):
            try:
                children.append(parse_digest(item["digest"]))
            except Problem:
                continue
    return children


@dataclass(frozen=True)
class Page:
    manifests: list[dict[str, Any]]
    next_last: str | None  # the `last` of the next page, when there is one


def select(entries: Iterable[dict[str, Any]], artifact_types: list[str]) -> list[dict[str, Any]]:
    """Entries sorted by digest, keeping only the given artifact types when any are given."""
    wanted = set(artifact_types)
    chosen = [entry for entry in entries if not wanted or entry.get("artifactType") in wanted]
    return sorted(chosen, key=lambda entry: entry["digest"])


def page(entries: list[dict[str, Any]], last: str | None, limit: int) -> Page:
    """The sorted `entries` after digest `last`, at most `limit` of them and at most PAGE_MAX_BYTES of JSON."""
    remaining = [entry for entry in entries if last is None or entry["digest"] > last]
    chosen: list[dict[str, Any]] = []
    size = 0
    for entry in remaining[: min(limit, PAGE_MAX_ENTRIES)]:
        size += len(orjson.dumps(entry)) + 1
        if chosen and size > PAGE_MAX_BYTES:
            break
        chosen.append(entry)
    more = len(chosen) < len(remaining) and bool(chosen)
    return Page(chosen, chosen[-1]["digest"] if more else None)


def image_index(manifests: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
