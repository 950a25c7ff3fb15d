"""Which repository of the bucket a read request is for: ``?ns=`` (containerd) or the default route (dockerd).

``ns`` is looked up in the configured routes, a closed table: it is never a host to dial. A routed request reads
``<prefix>/<name>`` (bucket first, then the route's remote); an unknown ``ns``, or no ``ns`` without a default
route, reads ``<name>`` from the bucket as before, so a name the bucket lacks is a fast 404 and the client falls
back to its next host.
"""

from __future__ import annotations

from starlette.requests import Request

from mirror.reference import parse_name
from mirror.upstream.tiered import TieredUpstream


def read_repository(request: Request) -> str:
    """The bucket repository a GET/HEAD of ``/v2/<name>/...`` reads (the cache passes it on in the keys it reads,
    so the remote tier routes a blob read on it)."""
    name = parse_name(request.path_params["name"])
    tiers: TieredUpstream | None = request.app.state.tiers
    if tiers is not None:
        name = parse_name(tiers.bucket_name(name, request.query_params.get("ns")))
    request.app.state.activity.request(name)
    return name
