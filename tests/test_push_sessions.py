"""Upload sessions kept in the bucket: a chunk counts whole or not at all, the size limit is a clear 413, and a
finished or cancelled session leaves nothing under ``_uploads/``."""

from __future__ import annotations

import random
from typing import Iterator

import httpx
import orjson
import pytest

from mirror import layout
from mirror.reference import parse_digest
from tests.support.digests import digest_of
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, s3_storage
from tests.support.push_http import error_code

MIB = 1024 * 1024
BUCKET = "registry"


def _stream(data: bytes, piece: int = MIB) -> Iterator[bytes]:
    """A body without Content-Length (chunked transfer), as a client streaming a layer sends it."""
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


@pytest.fixture(scope="module")
def edge(seaweed, tmp_path_factory):
    storage = s3_storage(seaweed.endpoint, BUCKET)
    with EdgeMirror(tmp_path_factory.mktemp("push-sessions"), storage, upload={"part_size": "5MiB"}, auth=ANONYMOUS_PUSH) as mirror:
        yield mirror


@pytest.fixture
def client(edge):
    with httpx.Client(base_url=edge.url, timeout=120) as http:
        yield http


def _uploads_left(seaweed, name: str, location: str) -> list[str]:
    upload_id = location.rstrip("/").rsplit("/", 1)[1]
    return seaweed.keys(BUCKET, layout.upload_directory(name, upload_id) + "/")


def test_content_range_disagreeing_with_content_length_is_size_invalid(client):
    location = client.post("/v2/sessions/app/blobs/uploads/").headers["Location"]
    response = client.patch(location, content=b"a" * 10, headers={"Content-Range": "0-19"})
    assert response.status_code == 400
    assert error_code(response) == "SIZE_INVALID"
    assert client.get(location).headers["Range"] == "0-0"


def test_a_short_chunk_does_not_count_and_the_client_can_resend_it(client, seaweed, registry_s3):
    generator = random.Random(5)
    first, second, last = generator.randbytes(6 * MIB), generator.randbytes(7 * MIB + 11), generator.randbytes(1000)
    data = first + second + last
    location = client.post("/v2/sessions/resend/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=first, headers={"Content-Range": f"0-{len(first) - 1}"}).status_code == 202

    # The body ends 1 MiB short of its Content-Range after a whole part went to the backend: the chunk must not count.
    end = len(first) + len(second) - 1
    short = client.patch(location, content=_stream(second[:-MIB]), headers={"Content-Range": f"{len(first)}-{end}"})
    assert short.status_code == 400
    assert error_code(short) == "SIZE_INVALID"
    assert client.get(location).headers["Range"] == f"0-{len(first) - 1}"

    again = client.patch(location, content=_stream(second), headers={"Content-Range": f"{len(first)}-{end}"})
    assert again.status_code == 202, again.text
    assert again.headers["Range"] == f"0-{end}"
    finished = client.put(f"{location}?digest={digest_of(data)}", content=last)
    assert finished.status_code == 201, finished.text
    assert httpx.get(f"{registry_s3.url}/v2/sessions/resend/blobs/{digest_of(data)}", timeout=60).content == data
    assert _uploads_left(seaweed, "sessions/resend", location) == []


def test_a_cancelled_upload_leaves_nothing_under_uploads(client, seaweed):
    location = client.post("/v2/sessions/app/blobs/uploads/").headers["Location"]
    client.patch(location, content=b"z" * (6 * MIB + 1))
    assert _uploads_left(seaweed, "sessions/app", location) != []
    assert client.delete(location).status_code == 204
    assert _uploads_left(seaweed, "sessions/app", location) == []


def test_a_wrong_digest_discards_the_session(client, seaweed):
    data = b"q" * (5 * MIB + 17)
    location = client.post("/v2/sessions/app/blobs/uploads/").headers["Location"]
    client.patch(location, content=data)
    wrong = client.put(f"{location}?digest={digest_of(b'something else')}")
    assert wrong.status_code == 400
    assert error_code(wrong) == "DIGEST_INVALID"
    assert _uploads_left(seaweed, "sessions/app", location) == []
    assert client.head(f"/v2/sessions/app/blobs/{digest_of(data)}").status_code == 404
    assert seaweed.keys(BUCKET, layout.blob_data(parse_digest(digest_of(data)))) == []


def test_an_empty_blob_can_be_pushed(client):
    empty = digest_of(b"")
    location = client.post("/v2/sessions/app/blobs/uploads/").headers["Location"]
    assert client.put(f"{location}?digest={empty}").status_code == 201
    response = client.get(f"/v2/sessions/app/blobs/{empty}")
    assert response.status_code == 200
    assert response.content == b""


@pytest.fixture(scope="module")
def limited_edge(seaweed, tmp_path_factory):
    storage = s3_storage(seaweed.endpoint, BUCKET)
    limits = {"part_size": "5MiB", "max_size": "8MiB"}
    with EdgeMirror(tmp_path_factory.mktemp("push-limited"), storage, upload=limits, auth=ANONYMOUS_PUSH) as mirror:
        yield mirror


def test_the_push_size_limit_is_a_clear_413(limited_edge, seaweed):
    with httpx.Client(base_url=limited_edge.url, timeout=120) as client:
        data = b"L" * (9 * MIB)
        declared = client.post(f"/v2/sessions/limited/blobs/uploads/?digest={digest_of(data)}", content=data)
        assert declared.status_code == 413
        assert error_code(declared) == "DENIED"
        assert "limit" in orjson.loads(declared.content)["errors"][0]["message"]
        assert seaweed.keys(BUCKET, layout.repository("sessions/limited") + "/_uploads/") == []

        location = client.post("/v2/sessions/limited/blobs/uploads/").headers["Location"]
        assert client.patch(location, content=_stream(data[: 6 * MIB])).status_code == 202
        streamed = client.patch(location, content=_stream(data[: 3 * MIB]))
        assert streamed.status_code == 413
        assert error_code(streamed) == "DENIED"
        assert client.get(location).headers["Range"] == f"0-{6 * MIB - 1}"
        assert client.delete(location).status_code == 204
        assert _uploads_left(seaweed, "sessions/limited", location) == []



def test_a_session_whose_tail_vanished_is_unknown_and_dropped_not_a_503(client, seaweed):
    """A request that saved its state while another one cancelled the session leaves a state naming a tail that
    is gone; that session can never complete, so the next chunk is told to start again (404), never a 503 retry."""
    location = client.post("/v2/sessions/app/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=b"t" * 1000).status_code == 202
    tails = [key for key in _uploads_left(seaweed, "sessions/app", location) if "/tails/" in key]
    assert len(tails) == 1
    seaweed.client().delete_object(Bucket=BUCKET, Key=tails[0])
    answer = client.patch(location, content=b"u" * 1000)
    assert answer.status_code == 404
    assert error_code(answer) == "BLOB_UPLOAD_UNKNOWN"
    assert "start the upload again" in orjson.loads(answer.content)["errors"][0]["message"]
    assert _uploads_left(seaweed, "sessions/app", location) == []
