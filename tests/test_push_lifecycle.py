"""A push session survives retries and crashes: a retried finish answers as the first did, a crash after the
multipart upload was completed loses nothing, and abandoned sessions and multipart uploads are purged."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import threading

import httpx
import orjson

from mirror import layout
from tests.support.digests import digest_of
from tests.support.edge import REPO_ROOT, EdgeMirror

MIB = 1024 * 1024
BUCKET = "registry"


def _session(edge: EdgeMirror, name: str, data: bytes) -> str:
    with httpx.Client(base_url=edge.url, timeout=60) as client:
        location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
        assert client.patch(location, content=data).status_code == 202
    return location


def _state(seaweed, name: str, location: str) -> dict:
    upload_id = location.rstrip("/").rsplit("/", 1)[1]
    body = seaweed.client().get_object(Bucket=BUCKET, Key=layout.upload_state(name, upload_id))["Body"].read()
    return orjson.loads(body)


def test_a_retried_finish_after_success_answers_created(push_edges):
    first, second = push_edges
    data = random.Random(1).randbytes(6 * MIB + 5)
    location = _session(first, "life/retry", data)
    assert httpx.put(f"{first.url}{location}?digest={digest_of(data)}", timeout=60).status_code == 201
    retried = httpx.put(f"{second.url}{location}?digest={digest_of(data)}", timeout=60)
    assert retried.status_code == 201, retried.text
    assert retried.headers["Docker-Content-Digest"] == digest_of(data)


def test_a_crash_after_the_multipart_upload_was_completed_loses_nothing(push_edges, seaweed):
    first, second = push_edges
    data = random.Random(2).randbytes(11 * MIB + 3)
    name = "life/crash"
    location = _session(first, name, data)
    state = _state(seaweed, name, location)
    upload_id = state["id"]
    # What an edge killed right after CompleteMultipartUpload leaves behind: the tail as the last part, the
    # multipart upload completed, and the state not updated.
    s3 = seaweed.client()
    key = layout.upload_data(name, upload_id)
    [tail_key] = seaweed.keys(BUCKET, layout.upload_directory(name, upload_id) + "/tails/")
    tail = s3.get_object(Bucket=BUCKET, Key=tail_key)["Body"].read()
    number = len(state["parts"]) + 1
    etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=state["multipart_id"], PartNumber=number, Body=tail)["ETag"]
    parts = [{"PartNumber": n, "ETag": e} for n, e, _ in state["parts"]] + [{"PartNumber": number, "ETag": etag}]
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=state["multipart_id"], MultipartUpload={"Parts": parts})

    finished = httpx.put(f"{second.url}{location}?digest={digest_of(data)}", timeout=60)
    assert finished.status_code == 201, finished.text
    served = httpx.get(f"{second.url}/v2/{name}/blobs/{digest_of(data)}", timeout=60)
    assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == digest_of(data)[7:]


def test_finishes_racing_on_two_edges_publish_once_and_both_succeed_or_ask_to_retry(push_edges, seaweed):
    first, second = push_edges
    data = random.Random(3).randbytes(23 * MIB + 9)
    name = "life/racing-finish"
    location = _session(first, name, data)
    answers: list[int] = []
    bodies: list[str] = []

    def finish(edge: EdgeMirror) -> None:
        answer = httpx.put(f"{edge.url}{location}?digest={digest_of(data)}", timeout=120)
        answers.append(answer.status_code)
        bodies.append(answer.text)

    threads = [threading.Thread(target=finish, args=(edge,)) for edge in (second, first)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert 201 in answers and set(answers) <= {201, 503}, bodies
    again = httpx.put(f"{second.url}{location}?digest={digest_of(data)}", timeout=60)
    assert again.status_code == 201, again.text
    served = httpx.get(f"{first.url}/v2/{name}/blobs/{digest_of(data)}", timeout=60)
    assert hashlib.sha256(served.content).hexdigest() == digest_of(data)[7:]


def _purge(edge: EdgeMirror, older_than: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror", "purge-uploads", "--config", str(edge.config_path), "--older-than", older_than, *extra],
        capture_output=True, text=True, timeout=120, cwd=edge.workdir, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_purge_uploads_aborts_old_sessions_and_orphan_multipart_uploads_only(push_edges, seaweed):
    first, _ = push_edges
    name = "life/purge"
    old = _session(first, name, random.Random(4).randbytes(6 * MIB))
    old_id = old.rstrip("/").rsplit("/", 1)[1]
    s3 = seaweed.client()
    orphan = s3.create_multipart_upload(Bucket=BUCKET, Key=layout.upload_data(name, "0" * 32))["UploadId"]

    kept = _purge(first, "1h")
    assert kept.returncode == 0, kept.stderr
    assert seaweed.keys(BUCKET, layout.upload_directory(name, old_id) + "/") != []

    dry = _purge(first, "0s", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert old_id in dry.stdout and orphan in dry.stdout
    assert seaweed.keys(BUCKET, layout.upload_directory(name, old_id) + "/") != []

    purged = _purge(first, "0s")
    assert purged.returncode == 0, purged.stderr
    assert seaweed.keys(BUCKET, layout.upload_directory(name, old_id) + "/") == []
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=layout.uploads_directory(name)).get("Uploads", [])
    assert uploads == []
    assert httpx.get(f"{first.url}{old}", timeout=30).status_code == 404


def test_purge_uploads_refuses_a_bad_duration_naming_it(push_edges):
    first, _ = push_edges
    result = _purge(first, "soon")
    assert result.returncode == 2
    assert "--older-than" in result.stderr
