"""The test helpers work end to end against the real components: images built offline, pushed and pulled with
skopeo through registry:2 on SeaweedFS, the registry:2 layout in the bucket, proxy mode and a metrics scrape."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BUCKET
from tests.support import images, metrics, skopeo
from tests.support.ports import GRPC_OFFSET, free_port
from tests.support.processes import Server, http_status
from tests.support.registry2 import Registry2
from tests.support.seaweed import SeaweedS3

V2 = "docker/registry/v2"


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def _blob_key(digest: str) -> str:
    return f"{V2}/blobs/sha256/{_hex(digest)[:2]}/{_hex(digest)}/data"


def _assert_pulled_image(pulled: Path, image: images.BuiltImage, manifest_name: str) -> None:
    assert (pulled / manifest_name).read_bytes() == image.manifest_bytes
    for digest in image.blob_digests:
        assert (pulled / _hex(digest)).read_bytes() == image.blob_bytes(digest), digest


def test_image_round_trip_and_bucket_layout(registry_s3: Registry2, seaweed: SeaweedS3, tmp_path: Path) -> None:
    built = images.build_image(tmp_path / "layout", "v1", [300_000, 40_000], seed=1001)
    skopeo.push(tmp_path / "layout", "v1", f"{registry_s3.host}/smoke/app:v1")

    pulled = skopeo.pull(f"{registry_s3.host}/smoke/app:v1", tmp_path / "pulled")
    _assert_pulled_image(pulled, built, "manifest.json")
    digests = skopeo.dir_digests(pulled)
    assert set(digests) == {"manifest.json", "version", *(_hex(digest) for digest in built.blob_digests)}
    assert all(name == sha for name, sha in digests.items() if len(name) == 64)  # blobs are named by content

    keys = set(seaweed.keys(BUCKET, f"{V2}/"))
    for digest in built.all_digests:
        assert _blob_key(digest) in keys, digest
    link = f"{V2}/repositories/smoke/app/_manifests/tags/v1/current/link"
    assert link in keys
    body = seaweed.client().get_object(Bucket=BUCKET, Key=link)["Body"].read()
    assert body.decode() == built.manifest_digest


def test_index_push_and_pull_all_platforms(registry_s3: Registry2, tmp_path: Path) -> None:
    index = images.build_index(tmp_path / "layout", "v1", layer_sizes=[20_000, 5_000], seed=1002)
    assert [image.platform for image in index.images] == [("linux", "amd64"), ("linux", "arm64")]
    skopeo.push(tmp_path / "layout", "v1", f"{registry_s3.host}/smoke/multi:v1")

    every = skopeo.pull(f"{registry_s3.host}/smoke/multi:v1", tmp_path / "all")
    assert (every / "manifest.json").read_bytes() == index.manifest_bytes
    for image in index.images:
        _assert_pulled_image(every, image, f"{_hex(image.manifest_digest)}.manifest.json")
    assert skopeo.blob_names(every) == {digest for image in index.images for digest in image.blob_digests}

    one = skopeo.pull(f"{registry_s3.host}/smoke/multi:v1", tmp_path / "one", all_platforms=False)
    chosen = [image for image in index.images if (one / "manifest.json").read_bytes() == image.manifest_bytes]
    assert len(chosen) == 1
    _assert_pulled_image(one, chosen[0], "manifest.json")
    assert skopeo.blob_names(one) == set(chosen[0].blob_digests)


def test_proxy_registry_and_metrics(registry_s3: Registry2, tmp_path: Path) -> None:
    built = images.build_image(tmp_path / "layout", "v1", [50_000, 7_000], seed=1003)
    skopeo.push(tmp_path / "layout", "v1", f"{registry_s3.host}/smoke/proxied:v1")
    direct = skopeo.pull(f"{registry_s3.host}/smoke/proxied:v1", tmp_path / "direct")

    with Registry2.proxy(registry_s3.url, tmp_path / "cache", workdir=tmp_path / "proxy", metrics=True) as proxy:
        assert proxy.debug_url is not None
        through = skopeo.pull(f"{proxy.host}/smoke/proxied:v1", tmp_path / "through")
        assert skopeo.dir_digests(through) == skopeo.dir_digests(direct)
        scraped = metrics.scrape(proxy.debug_url)
        assert scraped.value("registry_http_request_duration_seconds_count", handler="manifest", method="get") >= 1
        assert scraped.value("registry_http_request_duration_seconds_count", handler="blob") >= len(built.blob_digests)
        assert scraped.value("no_such_metric_total") == 0.0
        for digest in built.blob_digests:  # the proxy caches what it served (in a goroutine, so allow a moment)
            cached = tmp_path / "cache" / _blob_key(digest)
            deadline = time.monotonic() + 10
            while not cached.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert cached.read_bytes() == built.blob_bytes(digest)
    assert not proxy.running


def test_rebuild_with_same_seed_is_identical_and_cached(tmp_path: Path) -> None:
    first = images.build_image(tmp_path / "a", "v1", [10_000], seed=1004)
    second = images.build_image(tmp_path / "b", "other", [10_000], seed=1004)
    assert second.manifest_digest == first.manifest_digest
    assert second.blob_path(second.layer_digests[0]).stat().st_ino == first.blob_path(first.layer_digests[0]).stat().st_ino
    layer = first.blob_bytes(first.layer_digests[0])
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == first.layer_digests[0]
    assert images.build_image(tmp_path / "c", "v1", [10_000], seed=1005).manifest_digest != first.manifest_digest


def test_server_reports_log_tail_when_it_dies(tmp_path: Path) -> None:
    port = free_port()
    assert port < 65535 - GRPC_OFFSET and free_port() != port
    script = "import sys; print('about to fail', flush=True); sys.exit(3)"
    server = Server([sys.executable, "-c", script], tmp_path / "dying.log")
    with pytest.raises(RuntimeError, match=r"(?s)exited with 3.*about to fail"):
        server.wait_http(f"http://127.0.0.1:{port}/", timeout=10)
    assert not server.running and http_status(f"http://127.0.0.1:{port}/") is None
