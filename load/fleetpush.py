"""The fleet model's "push → warm": a new image is pushed, then rolled out to every node of every region.

Two ways, on the same model as `load/fleetsim.py` (same measured costs, same link and NIC sharing):

- **warm** (registry events): each region's edge hears of the push `event_delay` seconds after it and fills the
  image's blobs once (single flight), before any node asks; the rollout starts `rollout_at` seconds after the push.
- **cold** (today): nothing happens until the rollout; the first batch of nodes in each region pays the fill.

Figures: seconds until every region holds the image (warm), bucket bytes per region (≈ one image either way:
single flight), and the pulls' p50/p99 of both.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from load.fleetsim import EDGE, Blob, Calibration, Region, _RegionModel


@dataclass
class PushOutcome:
    warm_seconds_by_region: list[float] = field(default_factory=list)  # push → the region holds every blob
    egress_by_region: list[int] = field(default_factory=list)
    pull_seconds: list[float] = field(default_factory=list)


def _warm(model: _RegionModel, image: int, finished: list[float]) -> None:
    """Fill every blob of `image` in `model`'s region as a warm does: at once, each once."""
    blobs = model.images[image]
    left = [len(blobs)]

    def one_done() -> None:
        left[0] -= 1
        if not left[0]:
            finished.append(model.now)

    def start() -> None:
        for digest, size in blobs:
            model.blob(image, digest, size, one_done)

    model.at(model.calibration.manifest[0] if model.calibration.manifest else 0.0, start)


def push_then_roll_out(calibration: Calibration, region: Region, blobs: Sequence[Blob], regions: int, nodes: int,
                       event_delay: float | None, rollout_at: float, seed: int = 0) -> PushOutcome:
    """Push an image made of `blobs` at time 0 and roll it out to `nodes` nodes in each of `regions` regions at
    `rollout_at`; with `event_delay` (seconds from push to the event), each region warms it first."""
    outcome = PushOutcome()
    for index in range(regions):
        model = _RegionModel(EDGE, calibration, region, [list(blobs)], random.Random(seed * 1000 + index))
        finished: list[float] = []
        if event_delay is not None:
            model.at(event_delay, lambda model=model, finished=finished: _warm(model, 0, finished))
        model.at(rollout_at, lambda model=model: model.rollout([[[0] for _ in range(nodes)]]))
        model.run()
        outcome.warm_seconds_by_region.append(finished[0] if finished else float("nan"))
        outcome.egress_by_region.append(model.egress)
        outcome.pull_seconds.extend(model.pull_seconds)
    return outcome
