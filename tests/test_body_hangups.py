"""A client that hangs up mid-body (a pod deleted mid-push, a cancelled CI job) is the client's event (issue 19
item 7): no 5xx in the access log or ``mirror_http_requests_total``, no traceback in the edge's log, counted
as status 499, and the upload session it was writing to survives for a resume."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import httpx
import pytest

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage, s3_storage

DECLARED = 1_000_000
SENT = 300_000
MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("body-hangups")
    with EdgeMirror(workdir / "edge", filesystem_storage(workdir / "data"), auth=ANONYMOUS_PUSH) as edge:
        yield edge


@pytest.fixture(scope="module")
def s3_edge(seaweed, tmp_path_factory):
    """Pushes into S3 multipart uploads with 5 MiB parts, so a hang-up can come while parts are in flight."""
    storage = s3_storage(seaweed.endpoint, "registry")
    workdir = tmp_path_factory.mktemp("body-hangups-s3")
    with EdgeMirror(workdir, storage, upload={"part_size": "5MiB"}, auth=ANONYMOUS_PUSH) as edge:
        yield edge


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hang_up_mid_body(
    edge: EdgeMirror, method: str, target: str, content_type: str = "application/octet-stream",
    declared: int = DECLARED, sent: int = SENT,
) -> None:
    """Announce `declared` body bytes, send `sent` of them, then close the socket."""
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: edge\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as sock:
        sock.sendall(head + os.urandom(sent))


def _count(edge: EdgeMirror, method: str, route: str, status: str) -> float:
    return edge.metrics().value("mirror_http_requests_total", method=method, route=route, status=status)


def _hang_up_is_counted_as_499(
    edge: EdgeMirror, method: str, route: str, target: str, content_type: str = "application/octet-stream", **sizes: int
) -> None:
    before = _count(edge, method, route, "499")
    log_before = edge.log_path.read_text(errors="replace")
    _hang_up_mid_body(edge, method, target, content_type, **sizes)
    deadline = time.monotonic() + 20
    while _count(edge, method, route, "499") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _count(edge, method, route, "499") == before + 1
    server_errors = [
        sample for sample in edge.metrics()["mirror_http_requests_total"] if sample.labels["status"].startswith("5") and sample.value
    ]
    assert server_errors == []
    log = edge.log_path.read_text(errors="replace")[len(log_before):]
    assert "Traceback" not in log and "ERROR" not in log, log
    hang_up_lines = [line for line in log.splitlines() if f'"{method} ' in line and f"route={route}" in line]
    assert hang_up_lines and all('" 499 ' in line for line in hang_up_lines), log


def _start(edge: EdgeMirror, name: str) -> str:
    response = httpx.post(f"{edge.url}/v2/{name}/blobs/uploads/")
    assert response.status_code == 202
    return response.headers["location"]


def test_hang_up_mid_patch_is_a_499_not_a_500(edge):
    _hang_up_is_counted_as_499(edge, "PATCH", "upload_session", _start(edge, "hang/patch"))


def test_hang_up_mid_finishing_put_is_a_499_not_a_500(edge):
    location = _start(edge, "hang/put")
    _hang_up_is_counted_as_499(edge, "PUT", "upload_session", f"{location}?digest={_digest(b'x')}")


def test_hang_up_mid_monolithic_post_is_a_499_not_a_500(edge):
    _hang_up_is_counted_as_499(edge, "POST", "start_upload", f"/v2/hang/post/blobs/uploads/?digest={_digest(b'x')}")


def test_hang_up_mid_manifest_put_is_a_499_not_a_500(edge):
    _hang_up_is_counted_as_499(edge, "PUT", "manifest", "/v2/hang/manifest/manifests/latest", OCI_MANIFEST)


def _resume_after_a_hang_up(edge: EdgeMirror, name: str, first: bytes, second: bytes, sent: int) -> None:
    """Push `first`, hang up after `sent` bytes of `second`, then resume with all of `second` and finish."""
    location = _start(edge, name)
    with httpx.Client(base_url=edge.url, timeout=120) as client:
        response = client.patch(location, content=first, headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 202
        location = response.headers["location"]
        hung_up = _count(edge, "PATCH", "upload_session", "499") + 1
        _hang_up_mid_body(edge, "PATCH", location, declared=len(second), sent=sent)
        # A client resumes once the edge is done with the chunk it abandoned (its parts may still be in flight
        # until then, and would race the resumed chunk's parts of the same numbers).
        deadline = time.monotonic() + 60
        while _count(edge, "PATCH", "upload_session", "499") < hung_up and time.monotonic() < deadline:
            time.sleep(0.1)
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{len(first) - 1}"
        response = client.patch(
            location,
            content=second,
            headers={"Content-Type": "application/octet-stream", "Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"},
        )
        assert response.status_code == 202
        digest = _digest(first + second)
        separator = "&" if "?" in response.headers["location"] else "?"
        finished = client.put(f"{response.headers['location']}{separator}digest={digest}")
        assert finished.status_code == 201, finished.text
        pulled = client.get(f"/v2/{name}/blobs/{digest}")
        assert pulled.status_code == 200 and pulled.content == first + second


def test_upload_resumes_after_a_hang_up_mid_chunk(edge):
    _resume_after_a_hang_up(edge, "hang/resume", os.urandom(SENT), os.urandom(DECLARED), SENT)


def test_hang_up_while_s3_parts_are_in_flight_is_a_499_not_a_500(s3_edge):
    location = _start(s3_edge, "hang/s3")
    _hang_up_is_counted_as_499(s3_edge, "PATCH", "upload_session", location, declared=32 * MIB, sent=12 * MIB)


def test_s3_upload_resumes_after_a_hang_up_while_parts_are_in_flight(s3_edge):
    _resume_after_a_hang_up(s3_edge, "hang/s3-resume", os.urandom(6 * MIB), os.urandom(16 * MIB), 12 * MIB)
