"""Bucket keys of the registry:2 layout for tests that reach into the bucket, via the product's own layout module."""

from __future__ import annotations

from mirror import layout
from mirror.reference import parse_digest


def blob_data(digest: str) -> str:
    return layout.blob_data(parse_digest(digest))


def tag_current_link(name: str, tag: str) -> str:
    return layout.tag_current_link(name, tag)


def layer_link(name: str, digest: str) -> str:
    return layout.layer_link(name, parse_digest(digest))


def manifest_revision_link(name: str, digest: str) -> str:
    return layout.manifest_revision_link(name, parse_digest(digest))
