"""The operator endpoint: ``GET /admin/stats`` and ``POST /admin/purge?image=...`` (what ``edge-mirror stats``
and ``edge-mirror purge`` call).

Off by default (``[admin] enabled``); when on, every call must carry ``Authorization: Bearer <admin.token>``.
The routes do not exist at all while it is off, so an edge without an admin token answers them 404.
"""

from __future__ import annotations

import hmac
import math
from collections import Counter

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mirror import errors, metrics
from mirror.cache import EdgeCache
from mirror.cache.purge import purge as purge_image
from mirror.reference import parse_image, parse_name
from mirror.upstream.tiered import TieredUpstream

TOP_REPOSITORIES = 10
# Per-repository counts are kept for at most this many names; beyond it the least requested half is dropped.
ACTIVITY_NAMES = 2000


class Activity:
    """Requests and blob bytes per repository on this node, bounded whatever names clients send."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    def request(self, name: str) -> None:
        self.requests[name] += 1
        if len(self.requests) > ACTIVITY_NAMES:
            keep = dict(self.requests.most_common(ACTIVITY_NAMES // 2))
            self.requests = Counter(keep)
            self.bytes = Counter({name: sent for name, sent in self.bytes.items() if name in keep})

    def sent(self, name: str, count: int) -> None:
        if name in self.requests:
            self.bytes[name] += count

    def top(self, count: int) -> list[dict[str, object]]:
        return [
            {"name": name, "requests": requests, "bytes": self.bytes.get(name, 0)}
            for name, requests in self.requests.most_common(count)
        ]


def _require_token(request: Request) -> None:
    expected = request.app.state.admin_token.encode()
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
    if not hmac.compare_digest(given, expected):
        metrics.auth_requests.labels("admin", "invalid").inc()
        raise errors.RegistryError(
            errors.UNAUTHORIZED, "the admin endpoint needs Authorization: Bearer <admin.token>",
            headers={"WWW-Authenticate": 'Bearer realm="edge-mirror-admin"'},
        )
    metrics.auth_requests.labels("admin", "ok").inc()


def _sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _announced(route: str) -> float | None:
    """The route's last announced ratelimit-remaining; None before any (the gauge starts at NaN)."""
    value = metrics.REGISTRY.get_sample_value("mirror_remote_ratelimit_remaining", {"route": route})
    return None if value is None or math.isnan(value) else value


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def collect_stats(edge: EdgeCache, tiers: TieredUpstream | None, activity: Activity) -> dict[str, object]:
    hits = sum(_sample("mirror_cache_requests_total", kind=kind, result="hit") for kind in ("manifest", "blob"))
    misses = sum(_sample("mirror_cache_requests_total", kind=kind, result="miss") for kind in ("manifest", "blob"))
    cached_bytes = _sample("mirror_served_bytes_total", source="cache")
    filled_bytes = _sample("mirror_served_bytes_total", source="fill")
    routes = []
    for route in tiers.routes if tiers is not None else []:
        routes.append({
            "ns": route.ns,
            "prefix": route.settings.prefix,
            "ratelimit_remaining": _announced(route.ns),
            "stale_tags_served": _sample("mirror_remote_stale_total", route=route.ns),
        })
    return {
        "cache": {"bytes": edge.store.volume(), "limit": edge.store.size_limit},
        "requests": {"hits": int(hits), "misses": int(misses), "hit_ratio": _ratio(hits, hits + misses)},
        "bytes": {
            "from_cache": int(cached_bytes), "from_fill": int(filled_bytes),
            "hit_ratio": _ratio(cached_bytes, cached_bytes + filled_bytes),
        },
        "top_repositories": activity.top(TOP_REPOSITORIES),
        "routes": routes,
        "writeback_pending": tiers.writeback.pending if tiers is not None else 0,
    }


async def stats(request: Request) -> Response:
    _require_token(request)
    state = request.app.state
    return Response(orjson.dumps(collect_stats(state.edge, state.tiers, state.activity)), media_type="application/json")


async def purge(request: Request) -> Response:
    """Drop ``?image=[host/]name:tag`` or ``name@digest`` from this node's cache; the host picks the route."""
    _require_token(request)
    image = parse_image(request.query_params.get("image", ""))
    tiers: TieredUpstream | None = request.app.state.tiers
    name = parse_name(tiers.bucket_name(image.name, image.host)) if tiers is not None else image.name
    tag = image.tag if image.digest is None else None
    dropped = await purge_image(request.app.state.edge, name, tag, image.digest)
    if tag is not None and tiers is not None:
        tiers.forget_tag(name, tag)
    return Response(orjson.dumps({"repository": name, "dropped": dropped}), media_type="application/json")


ROUTES = [
    Route("/admin/stats", stats, methods=["GET"]),
    Route("/admin/purge", purge, methods=["POST"]),
]
