"""Push raw blobs through a registry's own upload API (monolithic POST + PUT), so the registry writes the layout."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import httpx


def push_blob(registry_url: str, name: str, data: bytes) -> str:
    """Upload `data` as a blob of repository `name`; returns its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=registry_url, timeout=120) as client:
        _upload(client, name, digest, data, len(data))
    return digest


def push_blob_file(registry_url: str, name: str, path: Path) -> str:
    """Upload the file at `path` as a blob of `name`, streamed; returns its digest."""
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()

    def stream() -> Iterator[bytes]:
        with open(path, "rb") as file:
            yield from iter(lambda: file.read(1 << 20), b"")

    with httpx.Client(base_url=registry_url, timeout=300) as client:
        _upload(client, name, digest, stream(), path.stat().st_size)
    return digest


def _upload(client: httpx.Client, name: str, digest: str, content, length: int) -> None:  # type: ignore[no-untyped-def]
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    finished = client.put(
        f"{location}{separator}digest={digest}",
        content=content,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
    )
    assert finished.status_code == 201, finished.text


def write_random_file(path: Path, size: int, seed: int) -> Path:
    """A file of `size` pseudo-random bytes, written in 1 MiB pieces (deterministic for a seed)."""
    import random

    generator = random.Random(seed)
    with open(path, "wb") as file:
        remaining = size
        while remaining:
            piece = min(remaining, 1 << 20)
            file.write(generator.randbytes(piece))
            remaining -= piece
    return path


def sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()
