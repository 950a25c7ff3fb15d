"""Chunks racing on one upload session (a load balancer's retry, two edges) can never publish bytes under a digest
they do not hash to: the session's running hash is bound to the exact state and parts it covers."""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Iterator

import httpx
import orjson

from mirror import layout
from mirror.reference import parse_digest
from tests.support.digests import digest_of
from tests.support.edge import EdgeMirror
from tests.support.waiting import wait_until

MIB = 1024 * 1024
BUCKET = "registry"
PART = 5 * MIB


def _held_back(data: bytes, release: threading.Event) -> Iterator[bytes]:
    """Send the first whole part, then wait for `release` before sending the rest."""
    for start in range(0, PART, MIB):
        yield data[start : start + MIB]
    release.wait(30)
    yield data[PART:]


def _race(seaweed, first: EdgeMirror, racer: EdgeMirror, name: str) -> tuple[bytes, bytes, str]:
    """A (on `first`) and then B (on `racer`) start a chunk at the same offset, same length, other bytes, and
    each sends its first part; A ends first, B last: the session's state is B's, the hash `first` kept is A's."""
    generator = random.Random(name)
    a, b = generator.randbytes(PART + 1000), generator.randbytes(PART + 1000)
    with httpx.Client(base_url=first.url, timeout=60) as client:
        location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    upload_id = location.rstrip("/").rsplit("/", 1)[1]
    releases = {"a": threading.Event(), "b": threading.Event()}
    answers: dict[str, int] = {}

    def send(label: str, edge: EdgeMirror, data: bytes) -> None:
        with httpx.Client(base_url=edge.url, timeout=60) as client:
            answers[label] = client.patch(location, content=_held_back(data, releases[label])).status_code

    threads = {"a": threading.Thread(target=send, args=("a", first, a)), "b": threading.Thread(target=send, args=("b", racer, b))}
    threads["a"].start()
    _wait_for_part(seaweed, name, upload_id, a[:PART])  # A has sent its first part
    threads["b"].start()
    _wait_for_part(seaweed, name, upload_id, b[:PART])  # B has read the session's state and sent its first part
    releases["a"].set()
    threads["a"].join(60)
    releases["b"].set()
    threads["b"].join(60)
    assert set(answers) == {"a", "b"} and all(status in (202, 409, 416) for status in answers.values()), answers
    return a, b, location


def _wait_for_part(seaweed, name: str, upload_id: str, part: bytes, timeout: float = 30) -> None:
    """Wait until the bucket holds `part` as a part of a multipart upload of the session: the edge has received
    it and sent it on (S3 names an uploaded part by the MD5 of its bytes)."""
    etag = f'"{hashlib.md5(part).hexdigest()}"'
    wait_until(f"part {etag} in the bucket", lambda: etag in _uploaded_parts(seaweed, name, upload_id), timeout)


def _uploaded_parts(seaweed, name: str, upload_id: str) -> set[str]:
    client = seaweed.client()
    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=layout.upload_directory(name, upload_id))
    etags = set()
    for upload in uploads.get("Uploads", []):
        listed = client.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        etags.update(part["ETag"] for part in listed.get("Parts", []))
    return etags


def _published(seaweed, digest: str) -> bytes | None:
    key = layout.blob_data(parse_digest(digest))
    try:
        return seaweed.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except Exception:  # noqa: BLE001 - absent
        return None


def _finish_and_check(seaweed, edge: EdgeMirror, location: str, a: bytes, b: bytes) -> None:
    with httpx.Client(base_url=edge.url, timeout=60) as client:
        for data in (a, b):
            digest = digest_of(data)
            finished = client.put(f"{location}?digest={digest}")
            assert finished.status_code < 500, finished.text
            stored = _published(seaweed, digest)
            if finished.status_code == 201:
                assert stored is not None and hashlib.sha256(stored).hexdigest() == digest.split(":")[1]
                return
            assert orjson.loads(finished.content)["errors"][0]["code"] in {
                "DIGEST_INVALID", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"
            }
            assert stored is None or hashlib.sha256(stored).hexdigest() == digest.split(":")[1]


def test_racing_chunks_on_one_edge_never_publish_a_wrong_blob(push_edges, seaweed):
    first, _ = push_edges
    a, b, location = _race(seaweed, first, first, "race/one-edge")
    _finish_and_check(seaweed, first, location, a, b)


def test_racing_chunks_on_two_edges_never_publish_a_wrong_blob(push_edges, seaweed):
    first, second = push_edges
    a, b, location = _race(seaweed, first, second, "race/two-edges")
    _finish_and_check(seaweed, first, location, a, b)
