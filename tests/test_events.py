"""registry:2 notification events reach a two-edge region (peers on): a push warms the region, a delete is
forgotten on every edge within seconds. Real registry:2 (sending its own notifications), SeaweedFS, skopeo and
edge processes; deadlines are polled, never slept out.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import orjson
import pytest

from tests.support import images, skopeo
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, s3_storage
from tests.support.ports import free_port
from tests.support.processes import start as start_process
from tests.support.registry2 import Registry2
from tests.support.waiting import wait_until

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
    wait_until("both edges warmed the image",
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
        wait_until("tag and digest answer 404",
                 lambda: _tag_and_digest_status(edge, "team/deleted", "v1", image.manifest_digest) == (404, 404), 5)


@pytest.fixture
def receiver_edge(seaweed, started, tmp_path) -> EdgeMirror:
    """One edge (no peers) with its event receiver on."""
    return started(EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), fill=FILL, cache=CACHE,
                              admin={"enabled": True, "token": TOKEN}))


def _push_event(event_id: str, repository: str, tag: str, image: images.BuiltImage) -> bytes:
    target = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.manifest_digest,
              "size": len(image.manifest_bytes), "repository": repository, "tag": tag}
    return orjson.dumps({"events": [{"id": event_id, "timestamp": "2026-12-07T00:00:00Z", "action": "push",
                                     "target": target, "request": {}, "actor": {}, "source": {}}]})


def _post(edge: EdgeMirror, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Content-Type": EVENTS_MEDIA_TYPE, **BEARER} if headers is None else headers
    return httpx.post(f"{edge.url}/admin/notifications", content=body, headers=headers, timeout=10)


def test_a_replayed_event_changes_nothing(registry_s3, receiver_edge, tmp_path):
    image = images.build_image(tmp_path / "layout", "v1", [MIB], seed=2403)
    skopeo.push(image.layout_dir, "v1", f"{registry_s3.host}/team/replayed:v1")
    body = _push_event("replayed-1", "team/replayed", "v1", image)
    assert _post(receiver_edge, body).status_code == 202
    wait_until("the image is warm", lambda: metric(receiver_edge, "mirror_event_warms_total", result="ok") == 1, 10)
    read = metric(receiver_edge, "mirror_backend_bytes_total")
    assert _post(receiver_edge, body).status_code == 202
    assert metric(receiver_edge, "mirror_events_total", action="push", result="duplicate") == 1
    assert metric(receiver_edge, "mirror_events_total", action="push", result="queued") == 1
    assert metric(receiver_edge, "mirror_backend_bytes_total") == read


def test_an_unauthenticated_post_is_refused(receiver_edge):
    body = b'{"events": []}'
    assert _post(receiver_edge, body, {"Content-Type": EVENTS_MEDIA_TYPE}).status_code == 401
    wrong = {"Content-Type": EVENTS_MEDIA_TYPE, "Authorization": "Bearer not-the-admin-token-at-all"}
    response = _post(receiver_edge, body, wrong)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_body_that_is_not_an_envelope_is_a_clear_400(receiver_edge):
    response = _post(receiver_edge, b'{"events": [{"id": "1", "action": "push", "target": {"repository": "a"}}]}')
    assert response.status_code == 400
    assert "needs a digest or a tag" in response.json()["errors"][0]["message"]
    assert _post(receiver_edge, b"<xml/>").status_code == 400


def test_another_media_type_is_refused_and_application_json_accepted(receiver_edge):
    assert _post(receiver_edge, b'{"events": []}', {"Content-Type": "text/plain", **BEARER}).status_code == 415
    assert _post(receiver_edge, b'{"events": []}', {"Content-Type": "application/json", **BEARER}).status_code == 202


def test_a_body_over_the_limit_is_refused_unread(receiver_edge):
    response = _post(receiver_edge, b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "SIZE_INVALID"


def _slow_bucket(seaweed, workdir: Path, started) -> str:
    """The benchmark's link emulator in front of the bucket at 2 MB/s: warming an image takes seconds."""
    listen, control = free_port(), free_port()
    link = start_process(
        [sys.executable, "-m", "load.emulator", "--listen", f"127.0.0.1:{listen}", "--upstream", seaweed.endpoint.split("//")[1],
         "--ttfb-fast-ms", "0", "--slow-fraction", "0", "--conn-bandwidth", "2MB", "--aggregate-bandwidth", "2MB",
         "--control", f"127.0.0.1:{control}"],
        workdir / "emulator.log", url=f"http://127.0.0.1:{control}/stats", cwd=Path(__file__).resolve().parents[1],
    )
    started(link)
    return f"http://127.0.0.1:{listen}"


def test_a_flood_makes_registry2_back_off_and_no_event_is_dropped(seaweed, started, tmp_path):
    edge = started(EdgeMirror(tmp_path / "edge", s3_storage(_slow_bucket(seaweed, tmp_path, started), "registry"),
                              fill=FILL, cache=CACHE, admin={"enabled": True, "token": TOKEN}, events={"queue_size": 1}))
    central = started(Registry2.s3(seaweed.endpoint, "registry", workdir=tmp_path / "registry2",
                                   notifications=[endpoint(edge, threshold=1, backoff="200ms")]))
    built = [images.build_image(tmp_path / f"layout{index}", "v1", [12 * MIB], seed=2410 + index) for index in range(4)]
    with ThreadPoolExecutor(4) as pool:  # four pushes at once: one warm (6 s each) runs, one waits, the rest are refused
        list(pool.map(lambda index: skopeo.push(built[index].layout_dir, "v1", f"{central.host}/team/flood{index}:v1"),
                      range(4)))
    wait_until("every push event was queued in the end",
             lambda: metric(edge, "mirror_events_total", action="push", result="queued") == 4, 90)
    assert metric(edge, "mirror_events_total", action="push", result="busy") >= 1  # answered 503 + Retry-After
    wait_until("every image was warmed", lambda: metric(edge, "mirror_event_warms_total", result="ok") == 4, 90)


@pytest.fixture
def two_regions(seaweed, started, tmp_path) -> tuple[EdgeMirror, list[EdgeMirror]]:
    """Region B (two edges, peers on) and an edge of region A whose pushes and deletes notify region B."""
    storage = s3_storage(seaweed.endpoint, "registry")
    region_b = [started(edge) for edge in region(tmp_path / "b", storage)]
    storage_a = {**storage, "storage": {"driver": "s3", "delete": True}}
    edge_a = started(EdgeMirror(tmp_path / "a", storage_a, fill=FILL, auth=ANONYMOUS_PUSH,
                                **{"notifications.endpoints": [endpoint(region_b[0])]}))
    return edge_a, region_b


def test_a_push_through_an_edge_of_another_region_warms_this_region(two_regions, tmp_path):
    edge_a, region_b = two_regions
    image = images.build_image(tmp_path / "layout", "v1", [3 * MIB, MIB], seed=2404)
    skopeo.push(image.layout_dir, "v1", f"{edge_a.host}/team/from-a:v1")
    wait_until("region B warmed the image",
             lambda: all(metric(edge, "mirror_event_warms_total", result="ok") >= 1 for edge in region_b), 10)
    assert edge_a.metrics().value("mirror_events_sent_total", result="sent") >= 1
    _pull_reads_no_bucket_bytes(region_b, "team/from-a:v1", tmp_path)


def test_a_manifest_deleted_through_an_edge_of_another_region_is_gone_from_this_region(two_regions, tmp_path):
    edge_a, region_b = two_regions
    image = images.build_image(tmp_path / "layout", "v1", [MIB], seed=2405)
    skopeo.push(image.layout_dir, "v1", f"{edge_a.host}/team/deleted-in-a:v1")
    for edge in region_b:
        wait_until("region B serves the image",
                 lambda: _tag_and_digest_status(edge, "team/deleted-in-a", "v1", image.manifest_digest) == (200, 200), 10)
    response = httpx.delete(f"{edge_a.url}/v2/team/deleted-in-a/manifests/{image.manifest_digest}", timeout=30)
    assert response.status_code == 202
    for edge in region_b:
        wait_until("tag and digest answer 404",
                 lambda: _tag_and_digest_status(edge, "team/deleted-in-a", "v1", image.manifest_digest) == (404, 404), 5)


def test_a_blob_deleted_through_registry2_is_dropped_from_the_region_cache(wired, tmp_path):
    central, edges = wired
    image = images.build_image(tmp_path / "layout", "v1", [2 * MIB], seed=2406)
    skopeo.push(image.layout_dir, "v1", f"{central.host}/team/blob-deleted:v1")
    wait_until("both edges warmed the image",
             lambda: all(metric(edge, "mirror_event_warms_total", result="ok") >= 1 for edge in edges), 10)
    layer = image.layer_digests[0]
    cached = sum(metric(edge, "mirror_cache_size_bytes") for edge in edges)
    response = httpx.delete(f"{central.url}/v2/team/blob-deleted/blobs/{layer}", timeout=30)
    assert response.status_code == 202
    for edge in edges:
        wait_until("the blob answers 404",
                 lambda: httpx.head(f"{edge.url}/v2/team/blob-deleted/blobs/{layer}", timeout=10).status_code == 404, 5)
    # The owner's cached copy is gone, whatever link_ttl says.
    assert sum(metric(edge, "mirror_cache_size_bytes") for edge in edges) <= cached - image.layer_sizes[0]


def test_an_index_push_warms_only_the_configured_platforms(seaweed, started, tmp_path):
    edge = started(EdgeMirror(tmp_path / "edge", s3_storage(seaweed.endpoint, "registry"), fill=FILL, cache=CACHE,
                              admin={"enabled": True, "token": TOKEN}, events={"platforms": ["linux/arm64"]}))
    central = started(Registry2.s3(seaweed.endpoint, "registry", workdir=tmp_path / "registry2",
                                   notifications=[endpoint(edge)]))
    index = images.build_index(tmp_path / "layout", "v1", [("linux", "amd64"), ("linux", "arm64")], [MIB], seed=2407)
    skopeo.push(index.layout_dir, "v1", f"{central.host}/team/multi:v1")
    wait_until("the index was warmed", lambda: metric(edge, "mirror_event_warms_total", result="ok") >= 1, 10)
    arm = next(image for image in index.images if image.platform == ("linux", "arm64"))
    assert metric(edge, "mirror_event_warm_bytes_total", result="filled") == arm.config_size + sum(arm.layer_sizes)


class _Receiver:
    """A loopback events endpoint that answers 503 + Retry-After to the first `refuse` envelopes, then 202."""

    def __init__(self, refuse: int) -> None:
        self.bodies: list[tuple[int, bytes, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if len(receiver.bodies) < refuse else 202
                receiver.bodies.append((status, body, self.headers.get("Authorization", "")))
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_edge_retries_an_envelope_its_endpoint_refused_until_it_is_taken(seaweed, started, tmp_path):
    receiver = started(_Receiver(refuse=2))
    storage = {**s3_storage(seaweed.endpoint, "registry"), "storage": {"driver": "s3", "delete": True}}
    edge = started(EdgeMirror(tmp_path / "edge", storage, fill=FILL, auth=ANONYMOUS_PUSH, **{"notifications.endpoints": [
        {"name": "flaky", "url": receiver.url, "headers": {"Authorization": ["Bearer x"]}, "threshold": 1, "backoff": "100ms"}]}))
    image = images.build_image(tmp_path / "layout", "v1", [MIB], seed=2408)
    skopeo.push(image.layout_dir, "v1", f"{edge.host}/team/retried:v1")
    wait_until("the envelope was taken", lambda: [status for status, _, _ in receiver.bodies] == [503, 503, 202], 10)
    (event,) = orjson.loads(receiver.bodies[-1][1])["events"]
    assert {body for _, body, _ in receiver.bodies} == {receiver.bodies[0][1]}  # the same envelope, same id
    assert (event["action"], event["target"]["repository"], event["target"]["tag"]) == ("push", "team/retried", "v1")
    assert event["target"]["digest"] == image.manifest_digest
    assert receiver.bodies[-1][2] == "Bearer x"
    assert metric(edge, "mirror_events_sent_total", result="retried") == 2
