"""Prefetch from the manifest (``fill.prefetch``): an image manifest served starts background fills of its blobs,
planned from the manifest's sizes, into free room only, and only of blobs linked in the manifest's repository.
A real edge process on a filesystem root; images pushed through the edge's own upload API."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import orjson

from mirror import layout
from mirror.reference import parse_digest
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage
from tests.support.push_http import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, digest_of
from tests.support.tokens import ISSUER, SERVICE, TestCA, TokenServer, User, fetch_token, write_bundle

KIB = 1024
MIB = 1024 * KIB
# One GET at a time per fill: no part is cut while its GET runs, so the bucket bytes count exactly (a cut part's GET
# may overshoot its new end by a read chunk).
FILL = {"part_size": "1MiB", "first_part_size": "256KiB", "min_part_size": "256KiB", "parallelism": 1}
PREFETCH = {**FILL, "prefetch": True}
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def push_image(url: str, name: str, layers: list[bytes], tag: str = "v1") -> dict[str, Any]:
    """Push `layers` and a config as blobs of `name`, then their manifest under `tag`."""
    config = orjson.dumps({"architecture": "amd64", "os": "linux",
                           "rootfs": {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]}})
    with httpx.Client(base_url=url, timeout=60) as client:
        for blob in (*layers, config):
            response = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(blob)}, content=blob)
            assert response.status_code == 201, response.text
        manifest = orjson.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)} for layer in layers],
        })
        response = client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201, response.text
    blobs = {digest_of(blob): len(blob) for blob in (*layers, config)}
    return {"blobs": blobs, "layers": [digest_of(layer) for layer in layers], "config": digest_of(config)}


def random_layers(seed: str, sizes: list[int]) -> list[bytes]:
    generator = random.Random(seed)
    return [generator.randbytes(size) for size in sizes]


def pulled_bytes(edge: EdgeMirror) -> float:
    """Bytes the edge read from the backend for pulls (a push's reads of its own data are not counted)."""
    scraped = edge.metrics()
    return scraped.value("mirror_backend_bytes_total") - scraped.value("mirror_backend_bytes_total", op="push_read")


def get_manifest(edge: EdgeMirror, name: str, tag: str = "v1") -> None:
    response = httpx.get(f"{edge.url}/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}, timeout=30)
    assert response.status_code == 200, response.text


def get_blob(edge: EdgeMirror, name: str, digest: str) -> httpx.Response:
    return httpx.get(f"{edge.url}/v2/{name}/blobs/{digest}", timeout=60)


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def prefetched(edge: EdgeMirror, result: str) -> float:
    return edge.metrics().value("mirror_prefetch_bytes_total", result=result)


def edge_on(tmp_path: Path, workdir: str = "edge", **sections: Any) -> EdgeMirror:
    (tmp_path / "root").mkdir(exist_ok=True)
    return EdgeMirror(tmp_path / workdir, filesystem_storage(tmp_path / "root"), auth=ANONYMOUS_PUSH, **sections)


def test_a_manifest_get_prefetches_its_layers_so_later_blob_gets_are_hits(tmp_path: Path):
    with edge_on(tmp_path, fill=PREFETCH) as edge:
        image = push_image(edge.url, "team/app", random_layers("hits", [3 * MIB, 1 * MIB, 300 * KIB]))
        total = sum(image["blobs"].values())
        get_manifest(edge, "team/app")
        wait_for("prefetch", lambda: prefetched(edge, "filled") == total)
        for digest, size in image["blobs"].items():
            response = get_blob(edge, "team/app", digest)
            assert response.status_code == 200 and len(response.content) == size
        scraped = edge.metrics()
        assert scraped.value("mirror_cache_requests_total", kind="blob", result="hit") == len(image["blobs"])
        assert scraped.value("mirror_cache_requests_total", kind="blob", result="miss") == 0
        assert scraped.value("mirror_prefetch_served_bytes_total") == total
        assert total <= pulled_bytes(edge) <= total + 64 * KIB  # each blob once (plus the manifest and links)


def test_prefetch_takes_only_free_room_and_evicts_nothing(tmp_path: Path):
    with edge_on(tmp_path, fill=PREFETCH, cache={"size": "4MiB"}) as edge:
        resident = push_image(edge.url, "team/resident", random_layers("resident", [3 * MIB]))
        image = push_image(edge.url, "team/app", random_layers("room", [2 * MIB, 2 * MIB]))
        held = resident["layers"][0]
        assert get_blob(edge, "team/resident", held).status_code == 200  # the cache is now 3 of 4 MiB full
        get_manifest(edge, "team/app")
        layers = sum(image["blobs"][digest] for digest in image["layers"])
        wait_for("prefetch skipped", lambda: prefetched(edge, "skipped") >= layers)
        assert prefetched(edge, "filled") <= image["blobs"][image["config"]]  # the small config fits; no layer did
        get_blob(edge, "team/resident", held)
        assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="hit") == 1  # still cached


def test_a_blob_not_linked_in_the_repository_is_not_prefetched(tmp_path: Path):
    with edge_on(tmp_path, fill=PREFETCH) as edge:
        secret = random_layers("secret", [1 * MIB])
        push_image(edge.url, "team/other", secret)  # the blob is in storage, linked in team/other
        image = push_image(edge.url, "team/app", [*random_layers("open", [1 * MIB]), *secret])
    hidden = digest_of(secret[0])
    (tmp_path / "root" / layout.layer_link("team/app", parse_digest(hidden))).unlink()
    with edge_on(tmp_path, "puller", fill=PREFETCH) as edge:  # another edge: no link answer remembered
        get_manifest(edge, "team/app")
        linked = sum(size for digest, size in image["blobs"].items() if digest != hidden)
        wait_for("prefetch", lambda: prefetched(edge, "filled") >= linked)
        assert prefetched(edge, "filled") == linked
        assert get_blob(edge, "team/app", hidden).status_code == 404
        assert get_blob(edge, "team/other", hidden).status_code == 200
        assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="miss") == 1  # not prefetched


def test_a_blob_pulled_while_it_is_prefetched_joins_its_fill(tmp_path: Path):
    with edge_on(tmp_path, fill=PREFETCH) as edge:
        image = push_image(edge.url, "team/app", random_layers("join", [24 * MIB]))
        layer = image["layers"][0]
        get_manifest(edge, "team/app")
        response = get_blob(edge, "team/app", layer)  # right after the manifest: the prefetch is running
        assert response.status_code == 200 and digest_of(response.content) == layer
        total = sum(image["blobs"].values())
        wait_for("prefetch", lambda: prefetched(edge, "filled") == total)
        scraped = edge.metrics()
        assert scraped.value("mirror_fills_total", result="ok") == len(image["blobs"])  # one fill per blob
        assert scraped.value("mirror_prefetch_served_bytes_total") == image["blobs"][layer]
        assert total <= pulled_bytes(edge) <= total + 64 * KIB  # one read of the bucket, not two


def test_prefetch_is_off_by_setting(tmp_path: Path):
    with edge_on(tmp_path, fill={**FILL, "prefetch": False}) as edge:
        image = push_image(edge.url, "team/app", random_layers("off", [1 * MIB, 200 * KIB]))
        get_manifest(edge, "team/app")
        for digest in image["blobs"]:
            assert get_blob(edge, "team/app", digest).status_code == 200
        scraped = edge.metrics()
    assert scraped.value("mirror_cache_requests_total", kind="blob", result="miss") == len(image["blobs"])
    assert scraped.value("mirror_prefetch_bytes_total") == 0
    assert scraped.value("mirror_prefetch_served_bytes_total") == 0


def test_a_layer_whose_manifest_size_is_wrong_fails_its_prefetch_and_is_still_served(tmp_path: Path):
    layer = random_layers("size", [1 * MIB])[0]
    with edge_on(tmp_path, fill=PREFETCH) as edge:
        push_image(edge.url, "team/app", [layer])
        wrong = orjson.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(layer), "size": len(layer)},  # any linked blob
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer) + 1000}],
        })
        pushed = httpx.put(f"{edge.url}/v2/team/app/manifests/wrong", content=wrong, headers={"Content-Type": OCI_MANIFEST})
        assert pushed.status_code == 201, pushed.text
    with edge_on(tmp_path, "puller", fill=PREFETCH) as edge:
        get_manifest(edge, "team/app", "wrong")
        wait_for("prefetch failed", lambda: prefetched(edge, "failed") == len(layer) + 1000)
        response = get_blob(edge, "team/app", digest_of(layer))  # a fill of its own learns the right size
        assert response.status_code == 200 and response.content == layer
        assert prefetched(edge, "filled") == 0


def test_layers_beyond_prefetch_max_bytes_are_left_to_the_client(tmp_path: Path):
    with edge_on(tmp_path, fill={**PREFETCH, "prefetch_max_bytes": "2MiB"}) as edge:
        image = push_image(edge.url, "team/app", random_layers("max", [3 * MIB, 1 * MIB, 300 * KIB]))
        large = image["layers"][0]
        rest = sum(size for digest, size in image["blobs"].items() if digest != large)
        get_manifest(edge, "team/app")
        wait_for("prefetch", lambda: prefetched(edge, "filled") + prefetched(edge, "skipped") == rest + 3 * MIB)
        assert (prefetched(edge, "filled"), prefetched(edge, "skipped")) == (rest, 3 * MIB)
        assert get_blob(edge, "team/app", large).status_code == 200
        assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="miss") == 1  # the client's


def _platform_manifest(edge: EdgeMirror, name: str, layers: list[bytes], tag: str) -> tuple[str, int, dict[str, Any]]:
    """Push an image of `layers` under `tag`; its manifest's digest and size, and what `push_image` returns."""
    image = push_image(edge.url, name, layers, tag)
    response = httpx.get(f"{edge.url}/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}, timeout=30)
    return response.headers["Docker-Content-Digest"], len(response.content), image


def test_an_index_prefetches_nothing_and_its_platform_manifest_prefetches_its_layers(tmp_path: Path):
    with edge_on(tmp_path, fill=PREFETCH) as edge:
        amd64, amd64_size, amd64_image = _platform_manifest(edge, "team/app", random_layers("amd64", [1 * MIB]), "amd64")
        arm64, arm64_size, arm64_image = _platform_manifest(edge, "team/app", random_layers("arm64", [3 * MIB]), "arm64")
        index = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64, "size": amd64_size, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64, "size": arm64_size, "platform": {"architecture": "arm64", "os": "linux"}},
        ]})
        pushed = httpx.put(f"{edge.url}/v2/team/app/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX})
        assert pushed.status_code == 201, pushed.text
    with edge_on(tmp_path, "puller", fill=PREFETCH) as edge:  # a cold edge: nothing prefetched by the pushes' reads
        response = httpx.get(f"{edge.url}/v2/team/app/manifests/multi", headers={"Accept": OCI_INDEX}, timeout=30)
        assert response.status_code == 200, response.text
        response = httpx.get(f"{edge.url}/v2/team/app/manifests/{amd64}", headers={"Accept": OCI_MANIFEST}, timeout=30)
        assert response.status_code == 200, response.text
        chosen = sum(amd64_image["blobs"].values())
        wait_for("prefetch", lambda: prefetched(edge, "filled") >= chosen)
        assert prefetched(edge, "filled") == chosen  # not one byte of the platform the client did not pick
        arm64_layer = arm64_image["layers"][0]
        assert get_blob(edge, "team/app", arm64_layer).status_code == 200
        assert edge.metrics().value("mirror_prefetch_served_bytes_total") == 0  # the arm64 layer: not prefetched


USERS = {"alice": User("alice-pw", {"alice/*": ["pull"]}), "bob": User("bob-pw", {"shared/*": ["pull"]})}


def test_a_client_refused_the_manifest_makes_the_edge_prefetch_nothing(tmp_path: Path):
    with edge_on(tmp_path) as edge:
        private = push_image(edge.url, "alice/app", random_layers("private", [300 * KIB]))
        shared = push_image(edge.url, "shared/base", random_layers("shared", [3 * MIB]))
    ca = TestCA()
    server = TokenServer(ca.leaf(), USERS)
    token = {"realm": server.realm, "service": SERVICE, "issuer": ISSUER,
             "rootcertbundle": str(write_bundle(tmp_path / "roots.pem", ca.pem()))}
    try:
        with EdgeMirror(tmp_path / "puller", filesystem_storage(tmp_path / "root"), fill=PREFETCH,
                        auth={"method": "token"}, **{"auth.token": token}) as edge:

            def get_as(user: str, name: str, path: str) -> int:
                bearer = fetch_token(server.realm, SERVICE, [f"repository:{name}:pull"], (user, f"{user}-pw"))
                return httpx.get(f"{edge.url}/v2/{name}/{path}", timeout=30,
                                 headers={"Accept": OCI_MANIFEST, "Authorization": f"Bearer {bearer}"}).status_code

            assert get_as("bob", "alice/app", "manifests/v1") == 401  # bob may not pull alice/app: refused
            assert get_as("bob", "shared/base", "manifests/v1") == 200  # started after the refused one, and larger
            total = sum(shared["blobs"].values())
            wait_for("prefetch", lambda: prefetched(edge, "filled") >= total)
            assert prefetched(edge, "filled") == total  # shared/base's blobs only
            assert get_as("alice", "alice/app", f"blobs/{private['layers'][0]}") == 200
            assert edge.metrics().value("mirror_cache_requests_total", kind="blob", result="miss") == 1  # not prefetched
    finally:
        server.stop()
