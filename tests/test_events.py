"""registry:2 notification events reach a two-edge region (peers on): a push warms the region, a delete is
forgotten on every edge within seconds. Real registry:2 (sending its own notifications), SeaweedFS, skopeo and
edge processes; deadlines are polled, never slept out.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import orjson
import pytest

from tests.support import images, skopeo
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.ports import free_port
from tests.support.registry2 import Registry2

MIB = 1024 * 1024
TOKEN = "admin-token-for-the-event-tests"
SECRET = "region-secret-for-the-event-tests"
FILL = {"part_size": "1MiB", "first_part_size": "256KiB", "parallelism": 4}
# Tags and links trusted for an hour: only an event can make an edge forget them within the test.
CACHE = {"tag_ttl": "1h", "link_ttl": "1h"}
EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def region(workdir: Path, storage: dict[str, Any], count: int = 2, **sections: Any) -> list[EdgeMirror]:
    """`count` edges listing each other as the region, admin (the event receiver) on."""
    ports = [free_port() for _ in range(count)]
    peers = {"secret": SECRET, "timeout": "10s", "addresses": [f"127.0.0.1:{port}" for port in ports]}
    return [
        EdgeMirror(workdir / f"edge{index}", storage, port=port, fill=FILL, cache=CACHE, peers=peers,
                   admin={"enabled": True, "token": TOKEN}, **sections)
        for index, port in enumerate(ports)
    ]


def endpoint(edge: EdgeMirror, **options: Any) -> dict[str, Any]:
    """registry:2's notifications endpoint pointing at `edge`'s receiver."""
    return {"name": "region", "url": f"{edge.url}/admin/notifications", "headers": {"Authorization": [f"Bearer {TOKEN}"]},
            "timeout": "5s", "threshold": 3, "backoff": "300ms", **options}


def wait_for(what: str, condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` until it holds; the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - started


def metric(edge: EdgeMirror, name: str, **labels: str) -> float:
    return edge.metrics().value(name, **labels)


@pytest.fixture
def started(tmp_path) -> Iterator[Callable[..., Any]]:
    """Starts edges and registries; stops them all at the end."""
    running: list[Any] = []

    def start(thing: Any) -> Any:
        running.append(thing)
        return thing.start(timeout=120) if isinstance(thing, EdgeMirror) else thing

    try:
        yield start
    finally:
        for thing in reversed(running):
            thing.stop()


@pytest.fixture
def wired(seaweed, started, tmp_path) -> tuple[Registry2, list[EdgeMirror]]:
    """A two-edge region on the bucket and a registry:2 on the same bucket notifying its first edge."""
    edges = [started(edge) for edge in region(tmp_path, s3_storage(seaweed.endpoint, "registry"))]
    central = started(Registry2.s3(seaweed.endpoint, "registry", workdir=tmp_path / "registry2",
                                   notifications=[endpoint(edges[0])]))
    return central, edges


def _pull_reads_no_bucket_bytes(edges: list[EdgeMirror], reference: str, tmp_path: Path) -> None:
    for index, edge in enumerate(edges):
        before = metric(edge, "mirror_backend_bytes_total")
        skopeo.pull(f"{edge.host}/{reference}", tmp_path / f"pull{index}", all_platforms=False)
        assert metric(edge, "mirror_backend_bytes_total") == before, f"edge {index} read the bucket"


def test_a_push_through_registry2_warms_every_edge_of_the_region(wired, tmp_path):
    central, edges = wired
    image = images.build_image(tmp_path / "layout", "v1", [3 * MIB, 2 * MIB, MIB], seed=2401)
    skopeo.push(image.layout_dir, "v1", f"{central.host}/team/warmed:v1")
    wait_for("both edges warmed the image",
             lambda: all(metric(edge, "mirror_event_warms_total", result="ok") >= 1 for edge in edges), 10)
    filled = sum(metric(edge, "mirror_event_warm_bytes_total", result="filled") for edge in edges)
    blob_bytes = image.config_size + sum(image.layer_sizes)
    assert filled == blob_bytes  # each blob filled once for the region, by its owner
    _pull_reads_no_bucket_bytes(edges, "team/warmed:v1", tmp_path)


def _tag_and_digest_status(edge: EdgeMirror, name: str, tag: str, digest: str) -> tuple[int, int]:
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    return (httpx.get(f"{edge.url}/v2/{name}/manifests/{tag}", headers=accept, timeout=10).status_code,
            httpx.get(f"{edge.url}/v2/{name}/manifests/{digest}", headers=accept, timeout=10).status_code)


def test_a_manifest_deleted_through_registry2_is_gone_from_every_edge_within_seconds(wired, tmp_path):
    central, edges = wired
    image = images.build_image(tmp_path / "layout", "v1", [MIB], seed=2402)
    skopeo.push(image.layout_dir, "v1", f"{central.host}/team/deleted:v1")
    for edge in edges:  # both edges now remember the tag, the links and the manifest for an hour
        assert _tag_and_digest_status(edge, "team/deleted", "v1", image.manifest_digest) == (200, 200)
    response = httpx.delete(f"{central.url}/v2/team/deleted/manifests/{image.manifest_digest}", timeout=30)
    assert response.status_code == 202
    for edge in edges:
        wait_for("tag and digest answer 404",
                 lambda: _tag_and_digest_status(edge, "team/deleted", "v1", image.manifest_digest) == (404, 404), 5)
