"""``/v2/<name>/manifests/<tag|digest>``: GET/HEAD serve the stored bytes unchanged; PUT and DELETE write."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mirror import errors
from mirror.api.negotiation import accepted_types, check_acceptable
from mirror.api.routing import read_repository
from mirror.cache import EdgeCache
from mirror.push.publish import Publisher
from mirror.mediatypes import MANIFEST_MAX_SIZE
from mirror.reference import is_digest, parse_digest, parse_name, parse_tag


async def get_manifest(request: Request) -> Response:
    edge: EdgeCache = request.app.state.edge
    name = read_repository(request)
    reference = request.path_params["reference"]
    if is_digest(reference):
        digest = parse_digest(reference)
    else:
        digest = await edge.resolve_tag(name, parse_tag(reference))
    manifest = await edge.manifest(name, digest)
    check_acceptable(manifest.media_type, accepted_types(request.headers.getlist("accept")))
    if request.method == "GET":  # its layers come next: start filling them (fill.prefetch)
        edge.prefetcher.manifest_served(name, digest, manifest.data)
    etag = f'"{digest}"'
    headers = {"Docker-Content-Digest": str(digest), "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(manifest.data, media_type=manifest.media_type, headers=headers)


async def put_manifest(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MANIFEST_MAX_SIZE:
            raise errors.RegistryError(errors.MANIFEST_INVALID, "manifest is larger than 4 MiB", status=413)
    publisher: Publisher = request.app.state.publisher
    digest, subject = await publisher.put_manifest(
        name, request.path_params["reference"], request.headers.get("content-type", ""), bytes(body)
    )
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": str(digest), "Content-Length": "0"}
    if subject:
        headers["OCI-Subject"] = subject
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    name = parse_name(request.path_params["name"])
    publisher: Publisher = request.app.state.publisher
    await publisher.delete_manifest(name, request.path_params["reference"])
    return Response(status_code=202, headers={"Content-Length": "0"})


async def manifest(request: Request) -> Response:
    """One route for a manifest's URL; dispatch on the method."""
    if request.method == "PUT":
        return await put_manifest(request)
    if request.method == "DELETE":
        return await delete_manifest(request)
    return await get_manifest(request)
