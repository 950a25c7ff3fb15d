"""``GET /v2/<name>/referrers/<digest>[?artifactType=...]``: the OCI 1.1 referrers API (spec.md "Listing Referrers").

Always 200 with an image index (empty when nothing refers to the digest, or the repository is unknown: a 404
would tell a client this registry has no referrers API). ``artifactType`` filters (several values: any of them)
and is acknowledged with ``OCI-Filters-Applied``. Pages are bounded; a ``Link: <...>; rel="next"`` header leads
to the next one (``n`` and ``last`` in it are this registry's own, as for tag listings).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from mirror import errors
from mirror.cache import EdgeCache
from mirror.mediatypes import OCI_INDEX
from mirror.reference import parse_digest, parse_name
from mirror.referrers import index


async def list_referrers(request: Request) -> Response:
    edge: EdgeCache = request.app.state.edge
    name = parse_name(request.path_params["name"])
    subject = parse_digest(request.path_params["digest"])
    artifact_types = [value for value in request.query_params.getlist("artifactType") if value]
    limit = _page_size(request.query_params.get("n"))
    last = request.query_params.get("last") or None

    chosen = index.select(await edge.referrers.referrers(name, subject), artifact_types)
    page = index.page(chosen, last, limit)
    headers: dict[str, str] = {}
    if artifact_types:
        headers["OCI-Filters-Applied"] = "artifactType"
    if page.next_last is not None:
        pairs = [*(("artifactType", value) for value in artifact_types), ("n", limit), ("last", page.next_last)]
        query = urlencode(pairs)
        headers["Link"] = f'</v2/{name}/referrers/{subject}?{query}>; rel="next"'
    return Response(index.image_index(page.manifests), media_type=OCI_INDEX, headers=headers)


def _page_size(raw: str | None) -> int:
    if raw is None:
        return index.PAGE_MAX_ENTRIES
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise errors.RegistryError(
            errors.PAGINATION_NUMBER_INVALID,
            f"n must be a non-negative whole number, got {raw[:20]!r}",
            {"n": raw[:20]},
        )
    return min(int(raw), index.PAGE_MAX_ENTRIES)
