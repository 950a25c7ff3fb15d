"""What every scenario shares: the sizes of a run, the bucket, test images, and contenders that stop with their
scenario.

One SeaweedFS and one "pusher" registry:2 (S3 driver, straight to SeaweedFS) serve the whole run; test images
are built once, pushed once and remembered. Each scenario starts its contenders through `Bench`, and
`Bench.scope()` stops them when the scenario ends, whatever happens.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load import images, profiles
from load.components import Edge, Emulator, Nginx, Registry2, SeaweedFS
from load.measure import Progress

# (repository name, sizes of its own layers, seed, shared layers as (seed, size) pairs or None)
ImageSpec = tuple[str, list[int], int, list[tuple[int, int]] | None]

KIB = 1024
MIB = 1024 * KIB

# The link as seen from a far region (the defaults); emulator flag → value.
LINK: dict[str, Any] = {
    "ttfb_fast_ms": 80, "ttfb_slow_ms": 400, "slow_fraction": 0.2,
    "conn_bandwidth": "20MB", "aggregate_bandwidth": "400MB",
}
AGGREGATE_RATE = 400e6  # bytes/s, the value of aggregate_bandwidth above


@dataclass(frozen=True)
class SweepSizes:
    """The points of the `sweep` scenario (quick sizes by default). `direct_max`: registry:2 direct reads one
    layer at ~20 MB/s through the link, so it is pulled only for layers up to this size."""

    layer_sizes: tuple[int, ...] = (2 * MIB, 4 * MIB, 8 * MIB)
    direct_max: int = 8 * MIB
    layer_counts: tuple[int, ...] = (1, 4, 16)
    layer_bytes: int = 1 * MIB  # each layer of the layers-per-image images, and each blob of the RSS fills
    herd_sizes: tuple[int, ...] = (1, 4, 16)
    herd_layer: int = 4 * MIB
    fill_counts: tuple[int, ...] = (1, 16)


@dataclass(frozen=True)
class Sizes:
    """How big and how often, per mode. `edge_fill` is the edge's [fill] section for the run: product
    defaults in full mode (empty), scaled down in quick mode so that a small cold layer still splits into many parts."""

    mode: str
    repeats: int
    load_seconds: float
    warm_blob: int
    warm_blob_connections: tuple[int, ...]
    manifest_connections: int
    cold_layer: int
    small_layers: tuple[int, ...]
    ttfb_probes: int
    ttfb_blob: int
    herd_pulls: int
    herd_layer: int
    memory_push: int
    fleet_regions: int
    fleet_nodes: int
    fleet_images: int
    fleet_waves: int
    fleet_images_per_node: int
    fleet_layer_range: tuple[int, int]
    fleet_bases: tuple[int, ...]
    range_blob: int = 32 * MIB
    cold_sizes: tuple[int, ...] = ()
    edge_fill: dict[str, Any] = field(default_factory=dict)
    push_blob: int = 48 * MIB  # the push scenario's blob
    push_upload: dict[str, Any] = field(default_factory=dict)  # the push scenario's edges' [upload] (empty: product defaults)
    sweep: SweepSizes = field(default_factory=SweepSizes)
    cost_blob: int = 32 * MIB  # the cost scenario's blob (each cold fill, the push)


QUICK = Sizes(
    mode="quick", repeats=2, load_seconds=1, warm_blob=64 * MIB, warm_blob_connections=(4,), manifest_connections=16,
    cold_layer=32 * MIB, small_layers=(512 * KIB, 256 * KIB, 128 * KIB), ttfb_probes=15, ttfb_blob=1 * MIB,
    herd_pulls=16, herd_layer=16 * MIB, memory_push=48 * MIB,
    fleet_regions=2, fleet_nodes=4, fleet_images=6, fleet_waves=2, fleet_images_per_node=1,
    fleet_layer_range=(256 * KIB, 6 * MIB), fleet_bases=(2 * MIB, 4 * MIB), range_blob=32 * MIB, cold_sizes=(8 * MIB,),
    edge_fill={"part_size": "2MiB", "first_part_size": "256KiB", "parallelism": 8},
    push_blob=48 * MIB, push_upload={"part_size": "5MiB"},  # S3's smallest part: a small blob still splits into many
    sweep=SweepSizes(),
)
MEDIUM = Sizes(
    mode="medium", repeats=3, load_seconds=3, warm_blob=256 * MIB, warm_blob_connections=(1, 8), manifest_connections=16,
    cold_layer=256 * MIB, small_layers=(2 * MIB, 1 * MIB, 512 * KIB), ttfb_probes=21, ttfb_blob=4 * MIB,
    herd_pulls=32, herd_layer=64 * MIB, memory_push=256 * MIB,
    fleet_regions=3, fleet_nodes=8, fleet_images=12, fleet_waves=2, fleet_images_per_node=2,
    fleet_layer_range=(1 * MIB, 48 * MIB), fleet_bases=(8 * MIB, 16 * MIB, 32 * MIB), range_blob=128 * MIB,
    cold_sizes=(48 * MIB,),
    edge_fill={"part_size": "16MiB", "first_part_size": "1MiB"},
    push_blob=256 * MIB, cost_blob=256 * MIB,
    sweep=SweepSizes(layer_sizes=(16 * MIB, 64 * MIB, 256 * MIB), direct_max=64 * MIB, layer_counts=(1, 2, 4, 8, 16),
                     layer_bytes=16 * MIB, herd_sizes=(1, 4, 16, 64), herd_layer=16 * MIB, fill_counts=(1, 2, 4, 8, 16)),
)
FULL = Sizes(  # the sizes where it gives them (256 MiB warm blob, 1 GiB cold layer, 64 pulls, 4 × 1 GiB...)
    mode="full", repeats=3, load_seconds=4, warm_blob=256 * MIB, warm_blob_connections=(1, 8, 32), manifest_connections=16,
    cold_layer=1024 * MIB, small_layers=(4 * MIB, 2 * MIB, 1 * MIB), ttfb_probes=31, ttfb_blob=8 * MIB,
    herd_pulls=64, herd_layer=128 * MIB, memory_push=1024 * MIB,
    fleet_regions=3, fleet_nodes=20, fleet_images=30, fleet_waves=3, fleet_images_per_node=2,
    fleet_layer_range=(1 * MIB, 100 * MIB), fleet_bases=(10 * MIB, 20 * MIB, 40 * MIB), range_blob=256 * MIB,
    cold_sizes=(256 * MIB, 48 * MIB),
    edge_fill={},  # the product's [fill] defaults
    push_blob=1024 * MIB, cost_blob=512 * MIB,  # the 512 MiB layer
    sweep=SweepSizes(layer_sizes=(16 * MIB, 64 * MIB, 256 * MIB, 1024 * MIB, 2048 * MIB), direct_max=256 * MIB,
                     layer_counts=(1, 2, 4, 8, 16), layer_bytes=32 * MIB, herd_sizes=(1, 4, 16, 64, 256),
                     herd_layer=32 * MIB, fill_counts=(1, 2, 4, 8, 16)),
)
MODES = {"quick": QUICK, "medium": MEDIUM, "full": FULL}
SOAK_MINUTES = {"quick": 0.0, "medium": 2.0, "full": 5.0}  # the soak scenario is skipped in quick mode


class Bench:
    """The run's shared world plus a factory for contenders scoped to the running scenario."""

    def __init__(self, workdir: Path, sizes: Sizes, progress: Progress, profile_dir: Path | None = None, profiler: str = "py-spy",
                 soak_minutes: float | None = None) -> None:
        self.workdir = workdir
        self.soak_minutes = SOAK_MINUTES[sizes.mode] if soak_minutes is None else soak_minutes
        self.profile_dir = profile_dir
        self.profiler = profiler
        self.sizes = sizes
        self.progress = progress
        self._images: dict[tuple[Any, ...], images.BuiltImage] = {}
        self._scoped: list[Any] = []
        self._seeds = 0
        self.seaweed = SeaweedFS(workdir / "seaweed")
        self.pusher = Registry2.s3(workdir / "pusher", self.seaweed.endpoint)

    def close(self) -> None:
        self._stop_scoped()
        self.pusher.stop()
        self.seaweed.stop()

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Contenders started inside stop when the block ends."""
        outer, self._scoped = self._scoped, []
        try:
            yield
        finally:
            self._stop_scoped()
            self._scoped = outer

    def _stop_scoped(self) -> None:
        for component in reversed(self._scoped):
            try:
                component.stop()
            except Exception:  # noqa: BLE001 - teardown must reach every component
                pass
        self._scoped.clear()

    def _track(self, component: Any) -> Any:
        self._scoped.append(component)
        return component

    # -- contenders ------------------------------------------------------------------------------------------

    def emulator(self, label: str, **link: Any) -> Emulator:
        """A link to the bucket: LINK, with any of its settings overridden."""
        self._seeds += 1
        return self._track(Emulator(self.workdir / "emulators", self.seaweed.endpoint, {**LINK, **link}, seed=self._seeds))

    def edge(self, label: str, cache_size: str = "50GiB", upload: dict[str, Any] | None = None, **fill: Any) -> tuple[Edge, Emulator]:
        """A fresh edge (empty cache) reading the bucket through an emulator of its own (`upload`: its [upload])."""
        link = self.emulator(f"{label}-link")
        settings = {**self.sizes.edge_fill, **fill}
        return self._track(Edge(self.workdir / "edges" / f"{label}-{link.port}", link.endpoint, settings, cache_size=cache_size,
                                profile=self._profile(f"{label}-{link.port}"), profiler=self.profiler, upload=upload)), link

    def _profile(self, name: str) -> Path | None:
        """Where an edge's profile goes (`profile_dir`, with --profile), or None."""
        if self.profile_dir is None:
            return None
        return self.profile_dir / f"profile-{self.progress.current}-{name}{profiles.SUFFIXES[self.profiler]}"

    def bucket_edge(self, label: str, upload: dict[str, Any] | None = None, tls: bool = False) -> Edge:
        """A fresh edge straight on the bucket, no emulator: what this machine carries without the far link
        (`tls`: through the bucket's HTTPS port, trusting its certificate, as an edge reaches Storj)."""
        endpoint = self.seaweed.tls_endpoint if tls else self.seaweed.endpoint
        name = f"{label}-bucket{'-tls' if tls else ''}"
        return self._track(Edge(self.workdir / "edges" / name, endpoint, self.sizes.edge_fill, upload=upload,
                                ca_file=self.seaweed.ca_file if tls else None, profile=self._profile(name), profiler=self.profiler))

    def region_edge(self, label: str, link: Emulator, port: int, peers: dict[str, Any] | None) -> Edge:
        """A fresh edge of a region whose edges share one link to the bucket (`link`), with `[peers]` or without."""
        return self._track(Edge(self.workdir / "edges" / f"{label}-{port}", link.endpoint, self.sizes.edge_fill,
                                port=port, peers=peers))

    def central(self, label: str) -> tuple[Registry2, Emulator]:
        """registry:2 with the S3 driver, reading the bucket through an emulator of its own."""
        link = self.emulator(f"{label}-link")
        return self._track(Registry2.s3(self.workdir / "central" / f"{label}-{link.port}", link.endpoint)), link

    def proxy(self, label: str) -> tuple[Registry2, Emulator]:
        """A fresh registry:2 proxy whose remote is a central registry:2 of its own (hence its own link)."""
        proxy, _, link = self.proxy_chain(label)
        return proxy, link

    def proxy_chain(self, label: str) -> tuple[Registry2, Registry2, Emulator]:
        """`proxy`, also naming its central (whose CPU the cost scenario shows beside the proxy's)."""
        central, link = self.central(f"{label}-central")
        return self._track(Registry2.proxy(self.workdir / "proxies" / f"{label}-{central.port}", central.url)), central, link

    def nginx(self, root: Path) -> Nginx:
        return self._track(Nginx(self.workdir / "nginx", root))

    # -- images ----------------------------------------------------------------------------------------------

    def image(self, name: str, layer_sizes: list[int], seed: int, shared: list[tuple[int, int]] | None = None) -> images.BuiltImage:
        """Build and push `name:v1` once per run."""
        return self.images([(name, layer_sizes, seed, shared)])[0]

    def images(self, specs: Sequence[ImageSpec]) -> list[images.BuiltImage]:
        """Build and push each (name, layer sizes, seed, shared layers) once per run: builds one after the other
        (CPU), pushes a few at a time (I/O); each layout is deleted once pushed, the bucket has it."""
        todo: dict[tuple[Any, ...], tuple[str, images.BuiltImage]] = {}
        for name, layer_sizes, seed, shared in specs:
            key = _image_key(name, layer_sizes, seed, shared)
            if key not in self._images and key not in todo:
                layout = self.workdir / "images" / f"{name.replace('/', '_')}-{seed}"
                todo[key] = (name, images.build_image(layout, layer_sizes, seed, shared_layers=shared))

        def push(key: tuple[Any, ...]) -> None:
            name, built = todo[key]
            images.push(built, self.pusher.host, name)
            shutil.rmtree(built.layout, ignore_errors=True)
            self._images[key] = built

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(push, todo))
        return [self._images[_image_key(*spec)] for spec in specs]


def _image_key(name: str, layer_sizes: list[int], seed: int, shared: list[tuple[int, int]] | None) -> tuple[Any, ...]:
    return (name, tuple(layer_sizes), seed, tuple(shared or ()))
