"""The fleet model's logic (load/fleetsim.py), on a tiny world where the right answers are known."""

from load import fleetsim

BLOBS = [[("config-a", 1_000), ("layer-a", 10_000_000)], [("config-b", 1_000), ("layer-a", 10_000_000), ("layer-b", 5_000_000)]]
CALIBRATION = fleetsim.Calibration(miss_ttfb=(0.1,), fill_rate=20e6, hit_ttfb=(0.001,), hit_rate=500e6, manifest=(0.01,))
REGION = fleetsim.Region(link_rate=400e6, serve_rate=1.25e9)
# one wave, two regions, eight nodes each; every node wants both images, so a batch of two nodes misses together
SCHEDULE = [[[[0, 1] for _ in range(8)] for _ in range(2)]]
UNIQUE_PER_REGION = 1_000 + 10_000_000 + 1_000 + 5_000_000


def test_single_flight_reads_each_blob_once_per_region() -> None:
    outcome = fleetsim.simulate(fleetsim.EDGE, CALIBRATION, REGION, BLOBS, SCHEDULE)
    assert outcome.egress_by_region == [UNIQUE_PER_REGION, UNIQUE_PER_REGION]


def test_registry_proxy_reads_more_than_once_per_blob() -> None:
    outcome = fleetsim.simulate(fleetsim.REGISTRY_PROXY, CALIBRATION, REGION, BLOBS, SCHEDULE)
    assert all(egress > 2 * UNIQUE_PER_REGION for egress in outcome.egress_by_region)


def test_every_wanted_image_is_pulled_once_per_node() -> None:
    twice = [SCHEDULE[0], SCHEDULE[0]]  # the second wave asks for what every node already has
    outcome = fleetsim.simulate(fleetsim.EDGE, CALIBRATION, REGION, BLOBS, twice)
    assert len(outcome.pull_seconds) == 2 * 8 * 2


def test_a_cold_pull_takes_ttfb_plus_bytes_over_the_fill_rate() -> None:
    alone = [[[[0]]]]  # one node, one image
    outcome = fleetsim.simulate(fleetsim.EDGE, CALIBRATION, REGION, BLOBS, alone)
    assert abs(outcome.pull_seconds[0] - (0.01 + 0.1 + 10_000_000 / 20e6)) < 1e-6


def test_concurrent_reads_share_the_region_link() -> None:
    narrow = fleetsim.Region(link_rate=10e6, serve_rate=1.25e9)
    wide = fleetsim.simulate(fleetsim.REGISTRY_PROXY, CALIBRATION, REGION, BLOBS, SCHEDULE)
    slow = fleetsim.simulate(fleetsim.REGISTRY_PROXY, CALIBRATION, narrow, BLOBS, SCHEDULE)
    assert max(slow.pull_seconds) > 2 * max(wide.pull_seconds)


def test_a_small_lru_evicts_and_reads_again() -> None:
    small = fleetsim.Region(link_rate=400e6, serve_rate=1.25e9, cache_bytes=6_000_000)
    outcome = fleetsim.simulate(fleetsim.EDGE, CALIBRATION, small, BLOBS, SCHEDULE)
    assert outcome.egress_by_region[0] > UNIQUE_PER_REGION


def test_calibration_tells_hits_from_misses_by_time_to_first_byte() -> None:
    fetches = [fleetsim.BlobFetch("a", 1_000_000, 0.0, 0.2, 0.3),  # first: a miss
               fleetsim.BlobFetch("a", 1_000_000, 0.1, 0.15, 0.25),  # overlaps the first: left out
               fleetsim.BlobFetch("a", 1_000_000, 1.0, 0.01, 0.02),  # after, fast first byte: a hit
               fleetsim.BlobFetch("a", 1_000_000, 2.0, 0.3, 0.4)]  # after, slow first byte: a miss again
    calibration, counts = fleetsim.calibrate([fetches], [0.05], link_ttfb=0.08)
    assert counts == {"misses": 2, "hits": 1, "manifests": 1}
    assert abs(calibration.fill_rate - 2_000_000 / 0.2) < 1e-3
    assert abs(calibration.hit_rate - 1_000_000 / 0.01) < 1e-3


def test_registry_proxy_reads_a_shared_layer_once_per_repository() -> None:
    one_at_a_time = [[[[0]]], [[[1]]]]  # one region, one node: image 0, then (next wave) image 1, no overlap
    outcome = fleetsim.simulate(fleetsim.REGISTRY_PROXY, CALIBRATION, REGION, BLOBS, one_at_a_time)
    stored_and_streamed = 2 * (1_000 + 10_000_000 + 1_000 + 10_000_000 + 5_000_000)  # layer-a again for image 1
    assert outcome.egress_by_region == [stored_and_streamed]


def test_push_then_warm_reads_one_image_per_region_and_every_pull_is_a_hit() -> None:
    from load import fleetpush

    image = BLOBS[1]
    size = sum(blob_size for _, blob_size in image)
    warm = fleetpush.push_then_roll_out(CALIBRATION, REGION, image, regions=3, nodes=8, event_delay=0.5, rollout_at=30)
    cold = fleetpush.push_then_roll_out(CALIBRATION, REGION, image, regions=3, nodes=8, event_delay=None, rollout_at=30)
    assert warm.egress_by_region == cold.egress_by_region == [size] * 3
    # held after the event, the manifest, a miss TTFB and the largest blob at the fill rate
    assert all(abs(seconds - (0.5 + 0.01 + 0.1 + 10_000_000 / 20e6)) < 1e-6 for seconds in warm.warm_seconds_by_region)
    assert max(warm.pull_seconds) < 0.1 < min(cold.pull_seconds[:1])  # a hit vs the first batch's cold fill
