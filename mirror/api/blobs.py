"""``HEAD``/``GET /v2/<name>/blobs/<digest>``: from the cache, or streamed from the fill as it lands."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mirror.api.ranges import parse_range, suffix_length
from mirror.api.responses import BlobResponse
from mirror.api.routing import read_repository
from mirror.cache import EdgeCache
from mirror.httpranges import content_range
from mirror.push.publish import Publisher
from mirror.reference import parse_digest, parse_name

# Content by digest never changes.
IMMUTABLE = "max-age=31536000"


def _headers(digest: str, length: int) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(length),
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": IMMUTABLE,
    }


async def delete_blob(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    digest = parse_digest(request.path_params["digest"])
    publisher: Publisher = request.app.state.publisher
    await publisher.delete_blob(name, digest)
    return Response(status_code=202, headers={"Content-Length": "0"})


async def blob(request: Request) -> Response | BlobResponse:
    """One route for a blob's URL; dispatch on the method."""
    if request.method == "DELETE":
        return await delete_blob(request)
    return await get_blob(request)


async def get_blob(request: Request) -> Response | BlobResponse:
    edge: EdgeCache = request.app.state.edge
    name = read_repository(request)
    digest = parse_digest(request.path_params["digest"])
    if request.method == "HEAD":
        size = await edge.blob_size(name, digest)
        return Response(status_code=200, headers=_headers(str(digest), size))
    reader = await edge.open_blob(name, digest, tail=suffix_length(request.headers.get("range")))
    request.state.cache_result = "hit" if reader.source == "cache" else "miss"  # for the access log
    try:
        wanted = parse_range(request.headers.get("range"), reader.size)
    except BaseException:
        reader.close()
        raise
    request.app.state.activity.sent(name, reader.size if wanted is None else wanted[1] - wanted[0])
    if wanted is None:
        return BlobResponse(reader, 200, _headers(str(digest), reader.size), 0, reader.size, send_body=True)
    start, end = wanted
    headers = _headers(str(digest), end - start)
    headers["Content-Range"] = content_range(start, end, reader.size)
    return BlobResponse(reader, 206, headers, start, end, send_body=True)
