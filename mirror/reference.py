"""Repository name, tag and digest grammar of the OCI distribution spec.

Everything a client puts in a URL passes through here before any backend call:
parse once, reject early with the right OCI error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mirror.domain import Invalid

# opencontainers/distribution-spec, "Pulling manifests": <name> and <reference> grammar.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")

# registry:2 caps the whole repository name at 255 characters.
NAME_MAX_LENGTH = 255

# Algorithms we can verify, with the length of their lower-case hex encoding.
SUPPORTED_ALGORITHMS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, slots=True)
class Digest:
    """A content digest such as ``sha256:0123...``; only verifiable algorithms are accepted."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_name(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise NAME_INVALID."""
    if len(name) > NAME_MAX_LENGTH:
        raise Invalid("name", f"repository name is longer than {NAME_MAX_LENGTH} characters", {"name": name[:64]})
    if not NAME_RE.fullmatch(name):
        raise Invalid(
            "name",
            "repository name must be lower-case path components of [a-z0-9] joined by '.', '_', '__' or '-'",
            {"name": name},
        )
    return name


def parse_digest(text: str) -> Digest:
    """Parse ``algorithm:hex``; raise DIGEST_INVALID for bad syntax or an algorithm we cannot verify."""
    if not DIGEST_RE.fullmatch(text):
        raise Invalid("digest", "invalid digest: expected algorithm:hex", {"digest": text})
    algorithm, _, encoded = text.partition(":")
    expected_length = SUPPORTED_ALGORITHMS.get(algorithm)
    if expected_length is None:
        raise Invalid(
            "digest",
            f"unsupported digest algorithm {algorithm!r} (supported: {', '.join(SUPPORTED_ALGORITHMS)})",
            {"digest": text},
        )
    if len(encoded) != expected_length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise Invalid(
            "digest",
            f"invalid {algorithm} digest: expected {expected_length} lower-case hex characters",
            {"digest": text},
        )
    return Digest(algorithm, encoded)


def is_digest(reference: str) -> bool:
    """A manifest <reference> is a digest when it contains ':' (tags cannot)."""
    return ":" in reference


def parse_tag(text: str) -> str:
    """Return `text` if it is a valid tag, else raise TAG_INVALID (404 MANIFEST_UNKNOWN: it names no manifest)."""
    if not TAG_RE.fullmatch(text):
        raise Invalid(
            "tag",
            f"no manifest can be named {text[:140]!r}: a tag is up to 128 characters of [A-Za-z0-9_.-], "
            "not starting with '.' or '-', and a digest is algorithm:hex",
            {"tag": text},
        )
    return text


@dataclass(frozen=True, slots=True)
class ImageReference:
    """``[host/]name[:tag][@digest]`` as an operator writes it; `host` becomes the ``ns`` of the request."""

    host: str | None
    name: str
    tag: str | None
    digest: Digest | None


DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def parse_image(text: str) -> ImageReference:
    """Parse an image reference the way docker does: a first component with '.' or ':' (or ``localhost``) is the
    registry host; ``docker.io/alpine`` means ``library/alpine``; no tag and no digest means ``latest``."""
    rest, _, digest_text = text.strip().partition("@")
    digest = parse_digest(digest_text) if digest_text else None
    host: str | None = None
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, rest = first.lower(), remainder
    tag = None
    last_slash = rest.rfind("/")
    if ":" in rest[last_slash + 1 :]:
        rest, _, tag = rest.rpartition(":")
        parse_tag(tag)
    if host in DOCKER_HUB_HOSTS and "/" not in rest:
        rest = f"library/{rest}"
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(host, parse_name(rest), tag, digest)
