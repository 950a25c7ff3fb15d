"""Build OCI image layouts on disk with no network: random-byte tar layers, config, manifest, index.json, oci-layout.

Builds are deterministic: the same sizes, platforms and seed always give the same digests. Each distinct build is
done once per session in a cache directory and then hard-linked into the requested layout, so repeating a build
(another test, another tag, another directory) costs only the links. Blob files are content-addressed: never write
to them in place (that would change the cached copy as well).

Layers come from `tests.support.layers`: one file of pseudo-random bytes each, gzip level 1, 4-8 s for
200 MiB.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.support.layers import write_layer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
_BUILDER_VERSION = 2  # bump when the output of a build changes, so stale cache entries are not reused


@dataclass
class BuiltImage:
    """One image manifest in an OCI layout. `layer_sizes` are the compressed blob sizes."""

    layout_dir: Path
    manifest_digest: str
    manifest_bytes: bytes
    config_digest: str
    layer_digests: list[str]
    layer_sizes: list[int]
    platform: tuple[str, str] = ("linux", "amd64")
    diff_ids: list[str] = field(default_factory=list)
    config_size: int = 0

    def blob_path(self, digest: str) -> Path:
        """Where the blob (or manifest) with `digest` is in the layout."""
        return _blob_path(self.layout_dir, digest)

    def blob_bytes(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    @property
    def blob_digests(self) -> list[str]:
        """The config and layer digests (what a registry stores as blobs for this image)."""
        return [self.config_digest, *self.layer_digests]

    @property
    def all_digests(self) -> list[str]:
        """Manifest, config and layer digests."""
        return [self.manifest_digest, *self.blob_digests]


@dataclass
class BuiltIndex:
    """An OCI image index in an OCI layout, with one `BuiltImage` per platform in `images`."""

    layout_dir: Path
    manifest_digest: str
    manifest_bytes: bytes
    images: list[BuiltImage] = field(default_factory=list)

    def blob_path(self, digest: str) -> Path:
        """Where the blob (or manifest) with `digest` is in the layout."""
        return _blob_path(self.layout_dir, digest)

    def blob_bytes(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    @property
    def manifest_digests(self) -> list[str]:
        """The per-platform image manifest digests, in index order."""
        return [image.manifest_digest for image in self.images]

    def image(self, os_name: str, architecture: str) -> BuiltImage:
        """The image for one platform."""
        return next(image for image in self.images if image.platform == (os_name, architecture))

    @property
    def all_digests(self) -> list[str]:
        """The index digest, then every image's manifest, config and layer digests."""
        return [self.manifest_digest, *(digest for image in self.images for digest in image.all_digests)]


def _blob_path(layout_dir: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":", 1)
    return layout_dir / "blobs" / algorithm / hex_digest


# --- cache ----------------------------------------------------------------------------------------------------------

_cache_dir: Path | None = None
_own_cache_dir: Path | None = None


def set_cache_dir(path: Path) -> None:
    """Keep built images under `path` (e.g. a session temp dir) instead of a private temp dir."""
    global _cache_dir
    path.mkdir(parents=True, exist_ok=True)
    _cache_dir = path


def cache_dir() -> Path:
    """The directory holding every distinct build of this session."""
    global _cache_dir, _own_cache_dir
    if _cache_dir is None:
        _own_cache_dir = _cache_dir = Path(tempfile.mkdtemp(prefix="oci-image-cache-"))
    return _cache_dir


@atexit.register
def _remove_own_cache() -> None:
    if _own_cache_dir is not None:
        shutil.rmtree(_own_cache_dir, ignore_errors=True)


def _cached_build(recipe: dict[str, Any], build: Any) -> dict[str, Any]:
    """The description of the build for `recipe`, building it into the cache first if needed."""
    key = hashlib.sha256(orjson.dumps({**recipe, "v": _BUILDER_VERSION}, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
    entry = cache_dir() / key
    described = entry / "build.json"
    if not described.exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir()))
        try:
            described_in_staging = build(staging)
            (staging / "build.json").write_bytes(orjson.dumps(described_in_staging))
            try:
                staging.rename(entry)
            except OSError:  # built concurrently by someone else: keep theirs
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return {"entry": entry, **orjson.loads(described.read_bytes())}


def _link_blobs(source: Path, layout_dir: Path) -> None:
    """Hard-link (or copy, across file systems) every blob of the cached layout `source` into `layout_dir`."""
    target = layout_dir / "blobs" / "sha256"
    target.mkdir(parents=True, exist_ok=True)
    for blob in (source / "blobs" / "sha256").iterdir():
        destination = target / blob.name
        if destination.exists():
            continue
        try:
            os.link(blob, destination)
        except OSError:
            shutil.copyfile(blob, destination)


# --- building ---------------------------------------------------------------------------------------------------------


def _write_blob(layout_dir: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = layout_dir / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}"


def _build_manifest(
    layout_dir: Path, layer_sizes: list[int], generator: random.Random, platform: tuple[str, str]
) -> BuiltImage:
    layers = []
    for index, size in enumerate(layer_sizes):
        salt = generator.getrandbits(128).to_bytes(16, "big")
        layers.append(write_layer(layout_dir, f"layer{index}-{salt.hex()[:8]}/data.bin", size, salt))
    config = orjson.dumps(
        {
            "created": "2026-01-01T00:00:00Z",
            "architecture": platform[1],
            "os": platform[0],
            "config": {"Cmd": ["/bin/true"], "Labels": {"seed": str(generator.random())}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, _, diff_id in layers]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
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
        diff_ids=[diff_id for _, _, diff_id in layers],
        config_size=len(config),
    )


def _write_layout(layout_dir: Path, tag: str, media_type: str, digest: str, size: int) -> None:
    """Write `oci-layout` and add (or replace) the `tag` entry of `index.json`, keeping other tags."""
    (layout_dir / "oci-layout").write_bytes(orjson.dumps({"imageLayoutVersion": "1.0.0"}))
    index_path = layout_dir / "index.json"
    manifests: list[dict[str, Any]] = []
    if index_path.exists():
        existing = orjson.loads(index_path.read_bytes()).get("manifests", [])
        manifests = [entry for entry in existing if entry.get("annotations", {}).get(REF_NAME) != tag]
    manifests.append({"mediaType": media_type, "digest": digest, "size": size, "annotations": {REF_NAME: tag}})
    index_path.write_bytes(orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))


def _image_to_json(image: BuiltImage) -> dict[str, Any]:
    described = asdict(image)
    described.pop("layout_dir")
    described["manifest_bytes"] = image.manifest_bytes.decode()
    return described


def _image_from_json(layout_dir: Path, described: dict[str, Any]) -> BuiltImage:
    values = dict(described)
    values["manifest_bytes"] = values["manifest_bytes"].encode()
    values["platform"] = tuple(values["platform"])
    return BuiltImage(layout_dir=layout_dir, **values)


def build_image(
    layout_dir: Path, tag: str, layer_sizes: list[int], seed: int, platform: tuple[str, str] = ("linux", "amd64")
) -> BuiltImage:
    """A single-platform image tagged `tag` in the OCI layout at `layout_dir`: one random file per layer, of about
    the given uncompressed size each."""

    def build(staging: Path) -> dict[str, Any]:
        return _image_to_json(_build_manifest(staging, list(layer_sizes), random.Random(seed), platform))

    described = _cached_build({"kind": "image", "sizes": list(layer_sizes), "seed": seed, "platform": platform}, build)
    layout_dir = Path(layout_dir)
    _link_blobs(described["entry"], layout_dir)
    image = _image_from_json(layout_dir, {k: v for k, v in described.items() if k != "entry"})
    _write_layout(layout_dir, tag, OCI_MANIFEST, image.manifest_digest, len(image.manifest_bytes))
    return image


def build_index(
    layout_dir: Path,
    tag: str,
    platforms: list[tuple[str, str]] | None = None,
    layer_sizes: list[int] | None = None,
    seed: int = 0,
) -> BuiltIndex:
    """An OCI image index tagged `tag` with one image per platform (default linux/amd64 and linux/arm64), each with
    its own layers of the given sizes (default one 50 kB layer)."""
    platforms = [tuple(platform) for platform in (platforms or [("linux", "amd64"), ("linux", "arm64")])]  # type: ignore[misc]
    sizes = list(layer_sizes or [50_000])

    def build(staging: Path) -> dict[str, Any]:
        generator = random.Random(seed)
        built = [_build_manifest(staging, sizes, generator, platform) for platform in platforms]  # type: ignore[arg-type]
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
                    for image in built
                ],
            }
        )
        return {
            "manifest_digest": _write_blob(staging, index),
            "manifest_bytes": index.decode(),
            "images": [_image_to_json(image) for image in built],
        }

    described = _cached_build({"kind": "index", "sizes": sizes, "seed": seed, "platforms": platforms}, build)
    layout_dir = Path(layout_dir)
    _link_blobs(described["entry"], layout_dir)
    index = BuiltIndex(
        layout_dir=layout_dir,
        manifest_digest=described["manifest_digest"],
        manifest_bytes=described["manifest_bytes"].encode(),
        images=[_image_from_json(layout_dir, image) for image in described["images"]],
    )
    _write_layout(layout_dir, tag, OCI_INDEX, index.manifest_digest, len(index.manifest_bytes))
    return index
