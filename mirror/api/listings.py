"""``GET /v2/<name>/tags/list`` and ``GET /v2/_catalog``, paginated with ``n`` and ``last`` as the spec says."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mirror import errors
from mirror.cache import EdgeCache
from mirror.reference import parse_name

# Answer at most this many entries when the client does not say `n` (registry:2's catalog default is 100; we
# return all tags by default, as registry:2 2.8 does, but cap pages to keep responses bounded).
MAX_PAGE = 10000


def paginate(request: Request, entries: list[str], path: str) -> tuple[list[str], dict[str, str]]:
    """The page of sorted `entries` after ``last``, at most ``n`` long, and a ``Link`` header for the next."""
    raw_n = request.query_params.get("n")
    last = request.query_params.get("last")
    if raw_n is None:
        limit = MAX_PAGE
    else:
        try:
            limit = int(raw_n)
        except ValueError:
            limit = -1
        if limit < 0:
            raise errors.RegistryError(
                errors.PAGINATION_NUMBER_INVALID, f"n must be a non-negative whole number, got {raw_n!r}", {"n": raw_n}
            )
        limit = min(limit, MAX_PAGE)
    if last:
        entries = [entry for entry in entries if entry > last]
    page = entries[:limit]
    headers: dict[str, str] = {}
    if len(entries) > limit and page:
        query = urlencode({"n": limit, "last": page[-1]})
        headers["Link"] = f'<{path}?{query}>; rel="next"'
    return page, headers


async def list_tags(request: Request) -> Response:
    edge: EdgeCache = request.app.state.edge
    name = parse_name(request.path_params["name"])
    tags, headers = paginate(request, await edge.tags(name), f"/v2/{name}/tags/list")
    return Response(orjson.dumps({"name": name, "tags": tags}), media_type="application/json", headers=headers)


async def catalog(request: Request) -> Response:
    edge: EdgeCache = request.app.state.edge
    repositories, headers = paginate(request, await edge.repositories(), "/v2/_catalog")
    return Response(orjson.dumps({"repositories": repositories}), media_type="application/json", headers=headers)
