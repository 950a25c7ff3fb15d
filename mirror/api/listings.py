"""``GET /v2/<name>/tags/list`` and ``GET /v2/_catalog``, paginated with ``n`` and ``last`` as the spec says."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mirror import errors
from mirror.cache import EdgeCache
from mirror.cache.catalog import Catalog
from mirror.reference import parse_name

# Answer at most this many entries when the client does not say `n` (registry:2's catalog default is 100; we
# return all tags by default, as registry:2 2.8 does, but cap pages to keep responses bounded).
MAX_PAGE = 10000


def page_size(request: Request) -> int:
    """The ``n`` a client asked for (at most MAX_PAGE); PAGINATION_NUMBER_INVALID when it is not a whole number."""
    raw_n = request.query_params.get("n")
    if raw_n is None:
        return MAX_PAGE
    whole = raw_n.isascii() and raw_n.isdigit()
    limit = (int(raw_n) if len(raw_n) <= 9 else MAX_PAGE) if whole else -1
    if limit < 0:
        raise errors.RegistryError(
            errors.PAGINATION_NUMBER_INVALID, f"n must be a non-negative whole number, got {raw_n[:40]!r}", {"n": raw_n[:40]}
        )
    return min(limit, MAX_PAGE)


def next_link(path: str, limit: int, page: list[str], more: bool) -> dict[str, str]:
    """The ``Link`` header pointing at the page after `page`, when there is one."""
    if not more or not page:
        return {}
    return {"Link": f'<{path}?{urlencode({"n": limit, "last": page[-1]})}>; rel="next"'}


def paginate(request: Request, entries: list[str], path: str) -> tuple[list[str], dict[str, str]]:
    """The page of sorted `entries` after ``last``, at most ``n`` long, and a ``Link`` header for the next."""
    limit = page_size(request)
    last = request.query_params.get("last")
    if last:
        entries = [entry for entry in entries if entry > last]
    page = entries[:limit]
    return page, next_link(path, limit, page, len(entries) > limit)


async def list_tags(request: Request) -> Response:
    edge: EdgeCache = request.app.state.edge
    name = parse_name(request.path_params["name"])
    every = await edge.tags(name)
    tags, headers = paginate(request, every, f"/v2/{name}/tags/list")
    # A repository whose last tag is gone lists ``"tags": null``, as registry:2 (a Go nil slice) does.
    return Response(orjson.dumps({"name": name, "tags": tags if every else None}), media_type="application/json", headers=headers)


async def catalog(request: Request) -> Response:
    walker: Catalog = request.app.state.catalog
    limit = page_size(request)
    repositories, more = await walker.page(request.query_params.get("last") or None, limit) if limit else ([], False)
    headers = next_link("/v2/_catalog", limit, repositories, more)
    return Response(orjson.dumps({"repositories": repositories}), media_type="application/json", headers=headers)
