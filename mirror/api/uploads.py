"""Blob uploads: ``POST``/``PATCH``/``PUT``/``GET``/``DELETE /v2/<name>/blobs/uploads/...``, and cross-repository mount."""

from __future__ import annotations

from typing import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from mirror import errors
from mirror.admission import WIDE_READS
from mirror.httpranges import parse_content_range
from mirror.push import Uploads, range_headers
from mirror.reference import parse_digest, parse_name


def _uploads(request: Request) -> Uploads:
    uploads: Uploads = request.app.state.uploads
    return uploads


def _body(request: Request) -> AsyncIterator[bytes]:
    """The upload's body, read through its connection's wide window where the server offers one (`WIDE_READS`):
    a push's body is the one big stream a client sends the edge, and this request is already authorized."""
    wide_reads = request.scope.get("extensions", {}).get(WIDE_READS)
    if wide_reads is not None:
        wide_reads["widen"]()
    return request.stream()


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


def _created(name: str, digest: str) -> Response:
    return Response(
        status_code=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"},
    )


async def start_upload(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    uploads = _uploads(request)
    mount, source = request.query_params.get("mount"), request.query_params.get("from")
    if mount and source:
        digest = parse_digest(mount)
        if await uploads.mount(name, digest, parse_name(source)):
            return _created(name, str(digest))
    monolithic = request.query_params.get("digest")
    if monolithic:
        digest = parse_digest(monolithic)
        await uploads.monolithic(name, digest, _body(request))
        return _created(name, str(digest))
    state = await uploads.start(name)
    return Response(status_code=202, headers={**range_headers(name, state), "Content-Length": "0"})


async def upload_chunk(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    start: int | None = None
    length: int | None = None
    declared = _declared_length(request)
    content_range = request.headers.get("content-range")
    if content_range:
        served = parse_content_range(content_range)
        if served is None:
            raise errors.RegistryError(errors.RANGE_INVALID, f"malformed Content-Range {content_range[:100]!r}; expected START-END")
        start, length = served.first, served.last - served.first + 1
    state = await _uploads(request).append(
        name, request.path_params["upload"], _body(request), start=start, length=length, declared=declared
    )
    return Response(status_code=202, headers={**range_headers(name, state), "Content-Length": "0"})


async def finish_upload(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    raw = request.query_params.get("digest")
    if not raw:
        raise errors.RegistryError(errors.DIGEST_INVALID, "finishing an upload needs ?digest=<algorithm:hex>")
    digest = parse_digest(raw)
    await _uploads(request).finish(name, request.path_params["upload"], digest, _body(request))
    return _created(name, str(digest))


async def upload_status(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    state = await _uploads(request).status(name, request.path_params["upload"])
    return Response(status_code=204, headers=range_headers(name, state))


async def cancel_upload(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    await _uploads(request).cancel(name, request.path_params["upload"])
    return Response(status_code=204)


async def upload_session(request: Request) -> Response:
    """One route for an upload session's URL; dispatch on the method."""
    handler = {
        "PATCH": upload_chunk,
        "PUT": finish_upload,
        "GET": upload_status,
        "HEAD": upload_status,
        "DELETE": cancel_upload,
    }[request.method]
    return await handler(request)
