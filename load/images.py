"""Test images without a network: OCI image layouts of random-byte layers, pushed with skopeo.

Layers are tars of one random file, gzip-wrapped with compression level 0 ("stored" deflate blocks): random
bytes do not compress, and level 0 builds a 1 GiB layer in seconds where level 1 would take most of a minute.
Bytes come from a seeded PRNG, so a (seed, sizes) pair always yields the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 8 * 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass
class Blob:
    digest: str
    size: int
    media_type: str


@dataclass
class BuiltImage:
    """An image in an OCI layout directory, and what a pull of it must fetch."""

    layout: Path
    tag: str
    manifest_digest: str
    manifest_size: int
    config: Blob
    layers: list[Blob] = field(default_factory=list)

    @property
    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]

    @property
    def total_bytes(self) -> int:
        return self.manifest_size + sum(blob.size for blob in self.blobs)


class _HashingWriter(io.RawIOBase):
    """A file sink that also hashes what goes through it (the compressed stream: the layer digest)."""

    def __init__(self, target: io.BufferedWriter) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.target.write(data)
        self.size += len(data)
        return len(data)


def _write_blob_file(layout: Path, data: bytes) -> Blob:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return Blob(f"sha256:{digest}", len(data), "")


def _build_layer(layout: Path, size: int, rng: random.Random, name: str) -> tuple[Blob, str]:
    """A gzip(level 0) tar holding one file of `size` random bytes; returns the blob and its diff_id."""
    staging = layout / "blobs" / "sha256" / f".{name}.partial"
    diff = hashlib.sha256()
    with open(staging, "wb") as raw:
        sink = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=0, mtime=0) as zipped:  # type: ignore[arg-type]

            def put(data: bytes) -> None:
                diff.update(data)
                zipped.write(data)

            info = tarfile.TarInfo(f"data/{name}.bin")
            info.size, info.mode, info.mtime = size, 0o644, 0
            put(info.tobuf(format=tarfile.PAX_FORMAT))
            remaining = size
            while remaining:
                step = min(CHUNK, remaining)
                put(rng.randbytes(step))
                remaining -= step
            put(b"\0" * ((-size) % 512) + b"\0" * 1024)  # pad the member, then the two end-of-archive blocks
    digest = sink.sha.hexdigest()
    staging.rename(layout / "blobs" / "sha256" / digest)
    return Blob(f"sha256:{digest}", sink.size, OCI_LAYER_GZIP), f"sha256:{diff.hexdigest()}"


def build_image(layout: Path, layer_sizes: list[int], seed: int, tag: str = "v1",
                shared_layers: list[tuple[int, int]] | None = None) -> BuiltImage:
    """Write an OCI image layout with one layer per size (plus `shared_layers`, given as (seed, size) pairs and
    built from their own seed so several images can share them byte for byte)."""
    if layout.exists():
        shutil.rmtree(layout)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    layers: list[Blob] = []
    diff_ids: list[str] = []
    for index, (layer_seed, size) in enumerate((shared_layers or []) + [(seed * 1000 + i, s) for i, s in enumerate(layer_sizes)]):
        blob, diff_id = _build_layer(layout, size, random.Random(layer_seed), f"layer-{layer_seed}-{index}")
        layers.append(blob)
        diff_ids.append(diff_id)
    config_doc = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/true"], "Labels": {"bench.seed": str(seed)}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config = _write_blob_file(layout, json.dumps(config_doc, sort_keys=True).encode())
    config.media_type = OCI_CONFIG
    manifest_doc = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size} for blob in layers],
    }
    manifest = _write_blob_file(layout, json.dumps(manifest_doc, sort_keys=True).encode())
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest.digest, "size": manifest.size,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    return BuiltImage(layout, tag, manifest.digest, manifest.size, config, layers)


def push(image: BuiltImage, registry_host: str, name: str, timeout: float = 900) -> None:
    """`skopeo copy` the layout to ``registry_host/name:tag`` over plain HTTP."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise RuntimeError("skopeo is not installed (apt-get install skopeo)")
    argv = [skopeo, "copy", "-q", "--dest-tls-verify=false", "--retry-times", "2",
            f"oci:{image.layout}:{image.tag}", f"docker://{registry_host}/{name}:{image.tag}"]
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo push of {name}:{image.tag} failed: {result.stderr.strip()[-2000:]}")
