"""``HEAD``/``GET /v2/<name>/manifests/<tag|digest>``: the stored bytes, unchanged."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mirror.api.negotiation import accepted_types, check_acceptable
from mirror.cache import EdgeCache
from mirror.reference import is_digest, parse_digest, parse_name, parse_tag


async def get_manifest(request: Request) -> Response:
    edge: EdgeCache = request.app.state.edge
    name = parse_name(request.path_params["name"])
    reference = request.path_params["reference"]
    if is_digest(reference):
        digest = parse_digest(reference)
    else:
        digest = await edge.resolve_tag(name, parse_tag(reference))
    manifest = await edge.manifest(name, digest)
    check_acceptable(manifest.media_type, accepted_types(request.headers.getlist("accept")))
    etag = f'"{digest}"'
    headers = {"Docker-Content-Digest": str(digest), "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(manifest.data, media_type=manifest.media_type, headers=headers)
