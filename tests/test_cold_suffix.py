"""A cold suffix Range (an eStargz footer, ``bytes=-51``) costs the edge one request to the bucket, not two (size
first, then the range): S3 answers a suffix range with the total size in Content-Range (issue 23 goal 7). The
answer — bytes, status, Content-Range — is registry:2's on the same storage.

The edge runs in this process (starlette's TestClient) on the real SeaweedFS, with its S3 reader's blob reads
recorded in the order they are made; counting requests, not timing them.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from mirror import config
from mirror.api import create_app
from mirror.upstream.s3 import S3Upstream
from tests.support.blobs import push_blob_file, write_random_file

MIB = 1024 * 1024
SIZE = 6 * MIB + 12345  # several parts at the fill settings below


@pytest.fixture(scope="module")
def cold_blob(registry_s3, tmp_path_factory) -> tuple[str, bytes]:
    path = write_random_file(tmp_path_factory.mktemp("suffix") / "blob", SIZE, seed=23)
    return push_blob_file(registry_s3.url, "team/footer", path), path.read_bytes()


@pytest.fixture
def blob_reads(monkeypatch) -> list[tuple[str, str]]:
    """Every blob read the edge's S3 reader makes, in order: (operation, what it asked)."""
    made: list[tuple[str, str]] = []
    real = {name: getattr(S3Upstream, name) for name in ("stat", "read_first", "read_last", "read_range") if hasattr(S3Upstream, name)}

    def recorder(name):  # type: ignore[no-untyped-def]
        def record(self, key, *args):  # type: ignore[no-untyped-def]
            if key.endswith("/data"):
                made.append((name, ",".join(map(str, args))))
            return real[name](self, key, *args)
        return record

    for name in real:
        monkeypatch.setattr(S3Upstream, name, recorder(name))
    return made


def _edge(seaweed, cache) -> TestClient:
    environ = {
        "MIRROR_STORAGE_DRIVER": "s3", "MIRROR_STORAGE_S3_REGION": "us-east-1",
        "MIRROR_STORAGE_S3_REGIONENDPOINT": seaweed.endpoint, "MIRROR_STORAGE_S3_BUCKET": "registry",
        "MIRROR_STORAGE_S3_ACCESSKEY": "x", "MIRROR_STORAGE_S3_SECRETKEY": "y",
        "MIRROR_CACHE_DIR": str(cache), "MIRROR_AUTH_ANONYMOUS": "pull",
        "MIRROR_FILL_PART_SIZE": "1MiB", "MIRROR_FILL_FIRST_PART_SIZE": "256KiB", "MIRROR_FILL_MIN_PART_SIZE": "256KiB",
    }
    return TestClient(create_app(config.load(None, environ=environ)))


def test_a_cold_suffix_range_is_one_request_to_the_bucket(seaweed, cold_blob, blob_reads, tmp_path):
    digest, data = cold_blob
    with _edge(seaweed, tmp_path / "edge") as edge:
        response = edge.get(f"/v2/team/footer/blobs/{digest}", headers={"Range": "bytes=-51"})
        assert response.status_code == 206 and response.content == data[-51:]
        reads_before_the_answer = list(blob_reads)
    assert reads_before_the_answer[0] == ("read_last", "51"), blob_reads
    covering = [read for read in blob_reads if read[0] in ("read_last", "stat")
                or (read[0] == "read_range" and int(read[1].split(",")[1]) > SIZE - 51)]
    assert covering == [("read_last", "51")], f"the footer took more than one request to the bucket: {blob_reads}"


@pytest.mark.parametrize("header", ["bytes=-51", f"bytes=-{SIZE + 100}", "bytes=-1"])
def test_a_cold_suffix_range_is_answered_as_registry_2_answers_it(seaweed, registry_s3, cold_blob, tmp_path, header):
    digest, data = cold_blob
    expected = httpx.get(f"{registry_s3.url}/v2/team/footer/blobs/{digest}", headers={"Range": header}, timeout=30)
    with _edge(seaweed, tmp_path / "edge") as edge:
        response = edge.get(f"/v2/team/footer/blobs/{digest}", headers={"Range": header})
        whole = edge.get(f"/v2/team/footer/blobs/{digest}")  # and the fill it started still completes the blob
    assert (response.status_code, response.headers.get("content-range"), response.content) == (
        expected.status_code, expected.headers.get("content-range"), expected.content)
    assert whole.status_code == 200 and whole.content == data
