"""What every scenario shares: sizes for quick and full runs, pushing test images, wrk, medians, progress."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from load.components import World
from tests.support import images, skopeo

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    warm_blob: int
    wrk_seconds: int
    repeats: int
    cold_layer: int
    herd_pulls: int
    herd_layer: int
    memory_fill: int
    memory_push: int
    fleet_regions: int
    fleet_nodes: int
    fleet_images: int
    fleet_waves: int
    fleet_max_layer: int
    edge_part_size: str  # fill parts scale with the blobs, so quick runs still fetch in parallel


QUICK = Sizes(
    warm_blob=64 * MIB, wrk_seconds=2, repeats=3, cold_layer=48 * MIB, herd_pulls=16, herd_layer=24 * MIB,
    memory_fill=48 * MIB, memory_push=256 * MIB, fleet_regions=2, fleet_nodes=4, fleet_images=6, fleet_waves=3,
    fleet_max_layer=6 * MIB, edge_part_size="8MiB",
)
FULL = Sizes(
    warm_blob=256 * MIB, wrk_seconds=5, repeats=5, cold_layer=1024 * MIB, herd_pulls=64, herd_layer=256 * MIB,
    memory_fill=1024 * MIB, memory_push=1024 * MIB, fleet_regions=3, fleet_nodes=20, fleet_images=30, fleet_waves=5,
    fleet_max_layer=200 * MIB, edge_part_size="64MiB",
)


class Progress:
    """One line per step on stderr, with the time since the run began."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def step(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def scenario(self, name: str) -> None:
        self.done += 1
        self.step(f"scenario {self.done}/{self.total}: {name}")


@dataclass
class Bench:
    world: World
    sizes: Sizes
    workdir: Path
    progress: Progress
    link_rate: float  # the emulator's aggregate cap, bytes per second

    def push_image(self, name: str, layer_sizes: list[int], seed: int) -> images.BuiltImage:
        layout = self.workdir / "images" / f"{name.replace('/', '_')}-{seed}"
        built = images.build_image(layout, "v1", layer_sizes, seed=seed)
        skopeo.push(layout, "v1", f"{self.world.pusher.host}/{name}:v1")
        return built


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass
class WrkResult:
    requests_per_second: float
    bytes_per_second: float
    non_2xx: int


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> WrkResult:
    """One bounded wrk run (two threads); raises if wrk is missing or fails."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is missing: apt-get install wrk")
    argv = [binary, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    if script is not None:
        argv += ["-s", str(script)]
    output = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if rps is None or transfer is None:
        raise RuntimeError(f"could not read wrk output:\n{output}")
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        bytes_per_second=float(transfer.group(1)) * _UNITS[transfer.group(2)],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def wrk_script(path: Path, method: str = "GET", headers: dict[str, str] | None = None) -> Path:
    lines = [f'wrk.method = "{method}"'] + [f'wrk.headers["{key}"] = "{value}"' for key, value in (headers or {}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path
