"""A discrete-event model of the `fleet` rollout, for fleets too large to run as processes on this machine.

Pure logic, no I/O: the scenario measures the inputs (`Calibration`) in its real runs and hands them in.

What is modelled, per region (regions are independent: each has its own cache node and its own link):

- the rollout of `scenarios_fleet.rollout`: waves one after the other; in a wave, batches of a quarter of the
  region's nodes; the nodes of a batch pull side by side, each its wanted images one after the other, skipping the
  ones it already has; a pull is its manifest, then all its blobs at once (the images have ≤ 4 blobs, the
  client's limit is 8);
- one cache node per region with an LRU of `cache_bytes` (None: never evicts, as in the real run);
- on a hit, a blob costs a time to first byte drawn from the measured hits, then its bytes at the measured hit
  rate, the region's concurrent hits sharing `serve_rate` (the cache node's NIC) fairly;
- on a miss, a backend read costs a time to first byte drawn from the measured misses, then its bytes at the
  measured per-fill rate, the region's concurrent reads sharing `link_rate` (the link's aggregate) fairly
  (processor sharing with a per-read cap, max-min fair);
- what a contender does on a miss is its code's behaviour (`Behaviour`), not a fitted factor: the edge's single
  flight (a miss while the blob is being filled waits for that fill: one read per blob per region) against
  registry:2 proxy's `ServeBlob` (the first miss starts a background read that stores the blob *and* a second
  read streamed to the client; a miss while that store runs streams its own read; the blob is a hit once stored)
  — and registry:2 keeps blobs per repository (a blob is served only in a repository it is linked into), so a
  layer shared by several images misses once per image, while its in-flight set is per digest (a miss in another
  repository during a store streams its own read and links nothing);

Egress is the bytes of backend reads; pull time is from asking for the manifest to the last blob's last byte.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Blob = tuple[str, int]  # (digest, bytes)
Schedule = list[list[list[list[int]]]]  # schedule[wave][region][node] = image indexes


@dataclass(frozen=True)
class Behaviour:
    """What a contender does on a miss (read from its code, not measured)."""

    single_flight: bool  # a miss while the blob is being filled waits for that fill instead of reading again
    store_read: bool = False  # the first miss starts a separate backend read that stores the blob (storeLocal)
    per_repository: bool = False  # a cached blob is a hit only in the repository (image) that stored it


EDGE = Behaviour(single_flight=True)
REGISTRY_PROXY = Behaviour(single_flight=False, store_read=True, per_repository=True)


@dataclass(frozen=True)
class Calibration:
    """One contender's measured costs (from the real run of the same benchmark)."""

    miss_ttfb: tuple[float, ...]  # seconds to the first byte of cold blobs, drawn from at random
    fill_rate: float  # bytes/s of one backend read after its first byte, uncontended
    hit_ttfb: tuple[float, ...]  # seconds to the first byte of cached blobs
    hit_rate: float  # bytes/s of one cached blob after its first byte
    manifest: tuple[float, ...]  # seconds to get an image's manifest


@dataclass(frozen=True)
class Region:
    """One region's shared resources."""

    link_rate: float  # bytes/s of the region's link to the bucket, shared by its backend reads
    serve_rate: float  # bytes/s the cache node can send its nodes, shared by its hits
    cache_bytes: int | None = None  # LRU capacity; None: never evicts


@dataclass
class Outcome:
    """What a played rollout cost: backend bytes per region and every pull's seconds (all regions)."""

    egress_by_region: list[int] = field(default_factory=list)
    pull_seconds: list[float] = field(default_factory=list)

    @property
    def egress(self) -> int:
        return sum(self.egress_by_region)


class _Pool:
    """Transfers sharing `capacity` fairly, each at most `cap` bytes/s. All transfers of a pool have the same
    cap, so every one runs at the same rate and a transfer ends when the pool's per-transfer service reaches
    its target: one heap, O(log n) per event."""

    def __init__(self, capacity: float, cap: float) -> None:
        self.capacity, self.cap = capacity, cap
        self.served = 0.0  # bytes each active transfer has received since the pool was created
        self.ends: list[tuple[float, int, Callable[[], None]]] = []

    def rate(self) -> float:
        return min(self.cap, self.capacity / len(self.ends)) if self.ends else 0.0

    def next_end(self, now: float) -> float:
        return now + (self.ends[0][0] - self.served) / self.rate() if self.ends else math.inf


class _RegionModel:
    """One region's cache node, link and nodes: an event heap for delays, two pools for transfers."""

    def __init__(self, behaviour: Behaviour, calibration: Calibration, region: Region, images: Sequence[Sequence[Blob]],
                 rng: random.Random) -> None:
        self.behaviour, self.calibration, self.images, self.rng = behaviour, calibration, images, rng
        self.region = region
        self.now = 0.0
        self.events: list[tuple[float, int, Callable[[], None]]] = []
        self.sequence = 0
        self.link = _Pool(region.link_rate, calibration.fill_rate)
        self.serve = _Pool(region.serve_rate, calibration.hit_rate)
        self.cache: OrderedDict[tuple[int, str], int] = OrderedDict()  # (repository or -1, digest) → bytes
        self.cached_bytes = 0
        self.filling: dict[str, list[Callable[[], None]]] = {}  # digest → callbacks waiting for its fill
        self.egress = 0
        self.pull_seconds: list[float] = []

    # -- the clock ----------------------------------------------------------------------------------------

    def _next(self) -> int:
        self.sequence += 1
        return self.sequence

    def at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (self.now + delay, self._next(), action))

    def transfer(self, pool: _Pool, size: int, done: Callable[[], None]) -> None:
        heapq.heappush(pool.ends, (pool.served + size, self._next(), done))

    def run(self) -> None:
        pools = (self.link, self.serve)
        while self.events or any(pool.ends for pool in pools):
            ends = [pool.next_end(self.now) for pool in pools]
            soonest = min(ends)
            event_time = self.events[0][0] if self.events else math.inf
            moment = min(soonest, event_time)
            for pool in pools:
                pool.served += pool.rate() * (moment - self.now)
            self.now = moment
            if event_time <= soonest:
                heapq.heappop(self.events)[2]()
            else:
                pool = pools[ends.index(soonest)]
                heapq.heappop(pool.ends)[2]()

    # -- the cache ----------------------------------------------------------------------------------------

    def _store(self, key: tuple[int, str], size: int) -> None:
        if key in self.cache:
            return
        self.cache[key] = size
        self.cached_bytes += size
        limit = self.region.cache_bytes
        while limit is not None and self.cached_bytes > limit and len(self.cache) > 1:
            _, evicted = self.cache.popitem(last=False)
            self.cached_bytes -= evicted

    def _backend_read(self, size: int, done: Callable[[], None]) -> None:
        self.egress += size
        self.at(self.rng.choice(self.calibration.miss_ttfb), lambda: self.transfer(self.link, size, done))

    def blob(self, image: int, digest: str, size: int, done: Callable[[], None]) -> None:
        key = (image if self.behaviour.per_repository else -1, digest)
        if key in self.cache:
            self.cache.move_to_end(key)
            self.at(self.rng.choice(self.calibration.hit_ttfb), lambda: self.transfer(self.serve, size, done))
            return
        filling = digest in self.filling
        if self.behaviour.single_flight:
            if filling:
                self.filling[digest].append(done)
                return
            self.filling[digest] = [done]
            self._backend_read(size, lambda: self._filled(key, size))
            return
        if self.behaviour.store_read and not filling:
            self.filling[digest] = []
            self._backend_read(size, lambda: self._filled(key, size))
        self._backend_read(size, done)

    def _filled(self, key: tuple[int, str], size: int) -> None:
        self._store(key, size)
        for callback in self.filling.pop(key[1]):
            callback()

    # -- the rollout --------------------------------------------------------------------------------------

    def pull(self, image: int, done: Callable[[], None]) -> None:
        started = self.now
        blobs = self.images[image]
        left = [len(blobs)]

        def one_done() -> None:
            left[0] -= 1
            if not left[0]:
                self.pull_seconds.append(self.now - started)
                done()

        def manifest_done() -> None:
            for digest, size in blobs:
                self.blob(image, digest, size, one_done)

        self.at(self.rng.choice(self.calibration.manifest), manifest_done)

    def rollout(self, waves: list[list[list[int]]]) -> None:
        """Start the rollout of `waves[wave][node]` at time 0; `run()` plays it."""
        nodes = len(waves[0]) if waves else 0
        have: list[set[int]] = [set() for _ in range(nodes)]
        batch = max(1, nodes // 4)
        batches = [(wave, first) for wave in range(len(waves)) for first in range(0, nodes, batch)]

        def start_batch(index: int) -> None:
            if index == len(batches):
                return
            wave, first = batches[index]
            members = range(first, min(nodes, first + batch))
            running = [len(members)]

            def node_done() -> None:
                running[0] -= 1
                if not running[0]:
                    start_batch(index + 1)

            for node in members:
                todo = [image for image in dict.fromkeys(waves[wave][node]) if image not in have[node]]
                have[node].update(todo)
                self._pull_in_turn(todo, node_done)

        start_batch(0)

    def _pull_in_turn(self, todo: list[int], done: Callable[[], None]) -> None:
        if not todo:
            self.at(0.0, done)
            return
        self.pull(todo[0], lambda: self._pull_in_turn(todo[1:], done))


def simulate(behaviour: Behaviour, calibration: Calibration, region: Region, images: Sequence[Sequence[Blob]],
             schedule: Schedule, seed: int = 0) -> Outcome:
    """Play `schedule` through one cache per region behaving as `behaviour` and costing as `calibration`."""
    outcome = Outcome()
    regions = len(schedule[0]) if schedule else 0
    for index in range(regions):
        model = _RegionModel(behaviour, calibration, region, images, random.Random(seed * 1000 + index))
        model.rollout([wave[index] for wave in schedule])
        model.run()
        outcome.egress_by_region.append(model.egress)
        outcome.pull_seconds.extend(model.pull_seconds)
    return outcome


def zipf_schedule(seed: int, images: int, waves: int, regions: int, nodes: int, per_node: int, s: float) -> Schedule:
    """schedule[wave][region][node]: `per_node` image indexes per node and wave, Zipf(s)-popular, seeded."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** s for rank in range(images)]
    return [[[rng.choices(range(images), weights, k=per_node) for _ in range(nodes)] for _ in range(regions)]
            for _ in range(waves)]


@dataclass(frozen=True)
class BlobFetch:
    """One blob GET a node made in the real run."""

    digest: str
    bytes: int
    started: float  # seconds, any origin shared by the region's fetches
    ttfb: float
    seconds: float


def calibrate(regions: Sequence[Sequence[BlobFetch]], manifests: Sequence[float],
              link_ttfb: float) -> tuple[Calibration, dict[str, int]]:
    """A contender's costs from its real run. Per region and digest, the first GET is a miss; a later GET that
    starts after the digest's earlier GETs all ended is a miss if its first byte took at least `link_ttfb` (the
    link's shortest time to first byte: only a backend read waits that long), else a hit; a GET that overlaps an
    earlier one (it met a read in flight) is left out. Rates are bytes over seconds after the first byte, summed (big blobs weigh what they carry).
    Returns the counts used too."""
    misses: list[BlobFetch] = []
    hits: list[BlobFetch] = []
    for fetches in regions:
        ended: dict[str, float] = {}  # digest → when its GETs so far ended
        for fetch in sorted(fetches, key=lambda item: item.started):
            end = fetch.started + fetch.seconds
            seen = fetch.digest in ended
            if seen and fetch.started < ended[fetch.digest]:
                ended[fetch.digest] = max(ended[fetch.digest], end)
                continue
            (misses if not seen or fetch.ttfb >= link_ttfb else hits).append(fetch)
            ended[fetch.digest] = end
    if not misses or not hits or not manifests:
        raise ValueError(f"cannot calibrate from {len(misses)} misses, {len(hits)} hits, {len(manifests)} manifests")

    def rate(sample: list[BlobFetch]) -> float:
        return sum(item.bytes for item in sample) / max(1e-6, sum(item.seconds - item.ttfb for item in sample))

    calibration = Calibration(
        miss_ttfb=tuple(item.ttfb for item in misses), fill_rate=rate(misses),
        hit_ttfb=tuple(item.ttfb for item in hits), hit_rate=rate(hits), manifest=tuple(manifests),
    )
    return calibration, {"misses": len(misses), "hits": len(hits), "manifests": len(manifests)}
