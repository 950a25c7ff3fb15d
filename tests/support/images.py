"""Build OCI image layouts on disk, offline: random-byte tar layers, config, manifest, index.json, oci-layout.

Builds are deterministic for a seed, so the same call gives the same digests.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
PIECE = 1 << 20


@dataclass
class BuiltImage:
    layout_dir: Path
    manifest_digest: str
    manifest_bytes: bytes
    config_digest: str
    layer_digests: list[str]
    layer_sizes: list[int]
    platform: tuple[str, str] = ("linux", "amd64")

    def blob_path(self, digest: str) -> Path:
        return self.layout_dir / "blobs" / "sha256" / digest.split(":", 1)[1]


@dataclass
class BuiltIndex:
    layout_dir: Path
    manifest_digest: str
    manifest_bytes: bytes
    images: list[BuiltImage] = field(default_factory=list)


def _write_blob(layout_dir: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = layout_dir / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}"


def _write_layer(layout_dir: Path, size: int, generator: random.Random, index: int) -> tuple[str, int, str]:
    """A gzip'd tar holding one file of `size` random bytes, streamed to disk; returns digest, size, diff_id."""
    staging = layout_dir / "blobs" / "sha256" / f".layer-{index}.tmp"
    staging.parent.mkdir(parents=True, exist_ok=True)
    compressed_hash, uncompressed_hash = hashlib.sha256(), hashlib.sha256()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(staging, "wb") as out:

        def emit(raw: bytes) -> None:
            uncompressed_hash.update(raw)
            packed = compressor.compress(raw)
            compressed_hash.update(packed)
            out.write(packed)

        info = tarfile.TarInfo(f"layer{index}/data.bin")
        info.size = size
        info.mtime = 0
        emit(info.tobuf(format=tarfile.GNU_FORMAT))
        remaining = size
        while remaining:
            piece = min(PIECE, remaining)
            emit(generator.randbytes(piece))
            remaining -= piece
        padding = (512 - size % 512) % 512
        emit(b"\0" * (padding + 1024))
        tail = compressor.flush()
        compressed_hash.update(tail)
        out.write(tail)
    digest = compressed_hash.hexdigest()
    staging.rename(staging.parent / digest)
    return f"sha256:{digest}", (staging.parent / digest).stat().st_size, f"sha256:{uncompressed_hash.hexdigest()}"


def _build_manifest(layout_dir: Path, layer_sizes: list[int], generator: random.Random, platform: tuple[str, str]) -> BuiltImage:
    layers = [_write_layer(layout_dir, size, generator, generator.randrange(1 << 30)) for size in layer_sizes]
    config = orjson.dumps(
        {
            "architecture": platform[1],
            "os": platform[0],
            "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/true"], "Labels": {"seed": str(generator.random())}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, _, diff_id in layers]},
            "history": [{"created": "2026-01-01T00:00:00Z"} for _ in layers],
        }
    )
    config_digest = _write_blob(layout_dir, config)
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": size} for digest, size, _ in layers],
        }
    )
    return BuiltImage(
        layout_dir=layout_dir,
        manifest_digest=_write_blob(layout_dir, manifest),
        manifest_bytes=manifest,
        config_digest=config_digest,
        layer_digests=[digest for digest, _, _ in layers],
        layer_sizes=[size for _, size, _ in layers],
        platform=platform,
    )


def _write_layout(layout_dir: Path, tag: str, media_type: str, digest: str, size: int) -> None:
    (layout_dir / "oci-layout").write_bytes(orjson.dumps({"imageLayoutVersion": "1.0.0"}))
    entry = {"mediaType": media_type, "digest": digest, "size": size, "annotations": {"org.opencontainers.image.ref.name": tag}}
    (layout_dir / "index.json").write_bytes(orjson.dumps({"schemaVersion": 2, "manifests": [entry]}))


def build_image(layout_dir: Path, tag: str, layer_sizes: list[int], seed: int) -> BuiltImage:
    """One single-platform (linux/amd64) image tagged `tag` in an OCI layout at `layout_dir`."""
    layout_dir.mkdir(parents=True, exist_ok=True)
    image = _build_manifest(layout_dir, layer_sizes, random.Random(seed), ("linux", "amd64"))
    _write_layout(layout_dir, tag, OCI_MANIFEST, image.manifest_digest, len(image.manifest_bytes))
    return image


def build_index(
    layout_dir: Path,
    tag: str,
    platforms: list[tuple[str, str]] | None = None,
    layer_sizes: list[int] | None = None,
    seed: int = 0,
) -> BuiltIndex:
    """An OCI image index tagged `tag` with one image per platform (default linux/amd64 and linux/arm64)."""
    layout_dir.mkdir(parents=True, exist_ok=True)
    generator = random.Random(seed)
    images = [_build_manifest(layout_dir, layer_sizes or [50_000], generator, platform) for platform in (platforms or [("linux", "amd64"), ("linux", "arm64")])]
    index = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": image.manifest_digest,
                    "size": len(image.manifest_bytes),
                    "platform": {"os": image.platform[0], "architecture": image.platform[1]},
                }
                for image in images
            ],
        }
    )
    digest = _write_blob(layout_dir, index)
    _write_layout(layout_dir, tag, OCI_INDEX, digest, len(index))
    return BuiltIndex(layout_dir=layout_dir, manifest_digest=digest, manifest_bytes=index, images=images)
