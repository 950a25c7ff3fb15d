"""Faults during fills, each against a real edge process and a real SeaweedFS: the edge is killed, the backend
dies or flaps, an object is truncated, the disk is full. Whatever happens, no client is ever handed wrong
bytes as a complete transfer, nothing unverified is committed, and the edge fills cleanly afterwards.

A slow link (``load/emulator.py``, see ``tests/support/breakable_link.py``) between the edge and SeaweedFS stretches a
fill of a few MiB over seconds, so a fault lands mid-fill.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support import layout_keys
from tests.support.digests import digest_of
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.breakable_link import BreakableLink
from tests.support.waiting import wait_until

MIB = 1024 * 1024
BUCKET = "registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SMALL_PARTS = {"part_size": "1MiB", "first_part_size": "256KiB", "parallelism": 4}


def _blob(seed: int, size: int = 8 * MIB) -> bytes:
    return random.Random(seed).randbytes(size)


def _put_blob(seaweed, name: str, data: bytes) -> str:
    """Write a blob and its repository link straight into the bucket, as registry:2 lays them out."""
    digest = digest_of(data)
    client = seaweed.client()
    client.put_object(Bucket=BUCKET, Key=layout_keys.blob_data(digest), Body=data)
    client.put_object(Bucket=BUCKET, Key=layout_keys.layer_link(name, digest), Body=digest.encode())
    return digest


@dataclass
class Transfer:
    """One blob GET streamed in a thread; whatever happens to the edge, what arrived is kept."""

    url: str
    status: int | None = None
    declared: int | None = None
    received: bytearray = field(default_factory=bytearray)
    started: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> "Transfer":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=60) as response:
                self.status = response.status_code
                self.declared = int(response.headers.get("content-length", "-1"))
                for chunk in response.iter_bytes():
                    self.received += chunk
                    self.started.set()
        except httpx.HTTPError:
            pass
        finally:
            self.started.set()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=90)
        assert not self.thread.is_alive(), f"GET {self.url} never ended"

    def complete_and_never_wrong(self, expected: bytes) -> bool:
        """Whether the transfer completed; fails the test if any byte it received is wrong."""
        if self.status != 200:
            return False
        assert bytes(self.received) == expected[: len(self.received)], "a client was handed wrong bytes"
        complete = len(self.received) == self.declared
        if complete:
            assert bytes(self.received) == expected, "a complete transfer has wrong bytes"
        return complete


def _files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()] if directory.exists() else []


def test_kill_9_during_four_fills_ten_times_never_serves_or_keeps_a_partial(seaweed, tmp_path):
    rounds, per_round, size = 10, 4, 4 * MIB
    seeds = [[1000 + 10 * round_ + index for index in range(per_round)] for round_ in range(rounds)]
    digests = [[_put_blob(seaweed, "team/crash", _blob(seed, size)) for seed in round_seeds] for round_seeds in seeds]
    chooser = random.Random(9)
    cache = tmp_path / "cache"
    with BreakableLink(seaweed.endpoint, tmp_path / "link", aggregate_bandwidth="12MB") as link:

        def edge_on_the_cache(number: int) -> EdgeMirror:
            """A fresh edge process on the same cache directory (a fresh port: the old one may be taken by now)."""
            storage = s3_storage(link.endpoint, BUCKET)
            return EdgeMirror(tmp_path / f"edge{number}", storage, cache={"dir": str(cache)}, fill=SMALL_PARTS)

        # Four fills of 4 MiB share 12 MB/s: 1.4 s at least, and the kill comes within 0.2 s of their first bytes.
        edge = edge_on_the_cache(0).start()
        try:
            for round_ in range(rounds):
                urls = [f"{edge.url}/v2/team/crash/blobs/{digest}" for digest in digests[round_]]
                transfers = [Transfer(url).start() for url in urls]
                for transfer in transfers:
                    assert transfer.started.wait(30)
                time.sleep(chooser.uniform(0, 0.2))
                edge.kill()
                cut = 0
                for seed, transfer in zip(seeds[round_], transfers):
                    transfer.join()
                    cut += not transfer.complete_and_never_wrong(_blob(seed, size))
                assert cut >= 1, f"round {round_}: the kill landed after every fill had finished"

                edge = edge_on_the_cache(round_ + 1).start()
                assert _files(cache / "partial") == [], f"round {round_}: partial files left after start-up"
                for digest in (digest for earlier in digests[: round_ + 1] for digest in earlier):
                    response = httpx.get(f"{edge.url}/v2/team/crash/blobs/{digest}", timeout=60)
                    assert response.status_code == 200
                    assert digest_of(response.content) == digest, f"round {round_}: {digest} served wrong"
        finally:
            edge.stop()


def test_backend_gone_mid_fill_fails_the_transfer_commits_nothing_and_refills_after_recovery(seaweed, tmp_path):
    """The S3 endpoint the edge talks to (the link) goes away mid-fill for longer than the part retries last."""
    data = _blob(2001)
    digest = _put_blob(seaweed, "team/outage", data)
    with BreakableLink(seaweed.endpoint, tmp_path / "link", aggregate_bandwidth="4MB") as link:
        with EdgeMirror(tmp_path / "edge", s3_storage(link.endpoint, BUCKET), fill=SMALL_PARTS) as edge:
            url = f"{edge.url}/v2/team/outage/blobs/{digest}"
            transfer = Transfer(url).start()
            assert transfer.started.wait(30)
            link.kill()
            transfer.join()
            assert not transfer.complete_and_never_wrong(data)
            wait_until("the failed fill counted", lambda: edge.metrics().value("mirror_fills_total", result="error") == 1, 60)
            assert _files(tmp_path / "edge" / "cache" / "partial") == []
            assert edge.metrics().value("mirror_fills_total", result="ok") == 0

            link.start()
            refilled = httpx.get(url, timeout=60)
            assert refilled.status_code == 200 and refilled.content == data
            again = httpx.get(url, timeout=60)
            assert again.content == data
            assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="hit") == 1


def test_a_flapping_backend_never_gets_wrong_bytes_served_or_committed(seaweed, tmp_path):
    data = _blob(3001)
    digest = _put_blob(seaweed, "team/flap", data)
    with BreakableLink(seaweed.endpoint, tmp_path / "link", aggregate_bandwidth="4MB") as link:
        with EdgeMirror(tmp_path / "edge", s3_storage(link.endpoint, BUCKET), fill=SMALL_PARTS) as edge:
            url = f"{edge.url}/v2/team/flap/blobs/{digest}"
            transfers = [Transfer(url).start()]
            assert transfers[0].started.wait(30)
            for _ in range(4):
                link.kill()
                time.sleep(0.2)
                transfers.append(Transfer(url).start())  # a client arriving while the backend is away
                link.start()
                time.sleep(0.3)
            for transfer in transfers:
                transfer.join()
                transfer.complete_and_never_wrong(data)
            wait_until("no partial file left", lambda: _files(tmp_path / "edge" / "cache" / "partial") == [], 30)

            after = httpx.get(url, timeout=60)
            assert after.status_code == 200 and after.content == data
            cached = httpx.get(url, timeout=60)
            assert cached.content == data
            metrics = edge.metrics()
            assert metrics.value("mirror_cache_requests_total", kind="blob", result="hit") >= 1
            assert metrics.value("mirror_fills_total", result="digest_mismatch") == 0


def test_a_truncated_object_fails_the_transfer_commits_nothing_and_fills_cleanly_once_repaired(seaweed, tmp_path):
    data = _blob(4001)
    digest = _put_blob(seaweed, "team/truncated", data)
    seaweed.client().put_object(Bucket=BUCKET, Key=layout_keys.blob_data(digest), Body=data[: len(data) // 2])
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, BUCKET), fill=SMALL_PARTS) as edge:
        url = f"{edge.url}/v2/team/truncated/blobs/{digest}"
        for _ in range(2):  # the second request must not find a committed copy either
            transfer = Transfer(url).start()
            transfer.join()
            assert not transfer.complete_and_never_wrong(data)
        metrics = edge.metrics()
        assert metrics.value("mirror_fills_total", result="digest_mismatch") == 2
        assert metrics.value("mirror_fills_total", result="ok") == 0
        assert _files(tmp_path / "edge" / "cache" / "partial") == []

        seaweed.client().put_object(Bucket=BUCKET, Key=layout_keys.blob_data(digest), Body=data)  # repaired
        repaired = httpx.get(url, timeout=60)
        assert repaired.status_code == 200 and repaired.content == data
        assert httpx.get(url, timeout=60).content == data
        assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="hit") == 1


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MiB filesystem (tmpfs) for the cache directory: the disk fills up long before cache.size."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_serves_the_blob_through_without_caching_it_and_stays_up(seaweed, small_disk, tmp_path):
    big = _blob(5001, 24 * MIB)
    small = _blob(5002, 1 * MIB)
    big_digest = _put_blob(seaweed, "team/diskfull", big)
    small_digest = _put_blob(seaweed, "team/diskfull", small)
    cache = {"dir": str(small_disk / "cache"), "size": "1GiB"}
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, BUCKET), cache=cache, fill=SMALL_PARTS) as edge:
        for _ in range(2):
            response = httpx.get(f"{edge.url}/v2/team/diskfull/blobs/{big_digest}", timeout=60)
            assert response.status_code == 200
            assert response.content == big
        assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="hit") == 0
        assert _files(small_disk / "cache" / "partial") == []
        assert httpx.get(f"{edge.url}/healthz").status_code == 200
        assert httpx.get(f"{edge.url}/v2/team/diskfull/blobs/{small_digest}", timeout=60).content == small


def test_a_full_disk_still_serves_tags_manifests_and_blobs(seaweed, small_disk, tmp_path):
    name = "team/fullindex"
    layer = _blob(5101, 1 * MIB)
    layer_digest = _put_blob(seaweed, name, layer)
    config_digest = _put_blob(seaweed, name, b"{}")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}],
    }).encode()
    manifest_digest = digest_of(manifest)
    client = seaweed.client()
    client.put_object(Bucket=BUCKET, Key=layout_keys.blob_data(manifest_digest), Body=manifest)
    client.put_object(Bucket=BUCKET, Key=layout_keys.manifest_revision_link(name, manifest_digest), Body=manifest_digest.encode())
    client.put_object(Bucket=BUCKET, Key=layout_keys.tag_current_link(name, "v1"), Body=manifest_digest.encode())
    cache = {"dir": str(small_disk / "cache"), "size": "1GiB"}
    with EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, BUCKET), cache=cache, fill=SMALL_PARTS) as edge:
        with open(small_disk / "filler", "wb") as filler:  # every byte the tmpfs has left, index files included
            try:
                while True:
                    filler.write(bytes(MIB))
                    filler.flush()
            except OSError:
                pass
        by_tag = httpx.get(f"{edge.url}/v2/{name}/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=60)
        assert by_tag.status_code == 200, by_tag.text
        assert by_tag.content == manifest
        assert httpx.get(f"{edge.url}/v2/{name}/manifests/{manifest_digest}", headers={"Accept": OCI_MANIFEST}, timeout=60).content == manifest
        for _ in range(2):
            blob = httpx.get(f"{edge.url}/v2/{name}/blobs/{layer_digest}", timeout=60)
            assert blob.status_code == 200 and blob.content == layer
        assert httpx.get(f"{edge.url}/healthz").status_code == 200
