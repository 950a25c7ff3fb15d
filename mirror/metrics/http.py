"""HTTP requests, connections and authentication."""

from __future__ import annotations

from typing import Iterable

from prometheus_client import Counter, Gauge, Histogram

from mirror.metrics.registry import DURATION_BUCKETS, Known, REGISTRY, declare, product

http_requests = Counter(
    "mirror_http_requests",
    "HTTP requests answered, by method (any other method: other), route (the handler's name; other: no route "
    "matched) and exact status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_METHODS = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS")
# The statuses the edge answers with. Another one (none is known) is still counted, from its first occurrence.
HTTP_STATUSES = (
    "200", "201", "202", "204", "206", "304", "400", "401", "403", "404", "405", "408", "413", "415", "416", "429",
    "499", "500", "503", "505",
)
UNMATCHED_ROUTE = "other"


def _http_series(known: Known) -> Iterable[tuple[str, ...]]:
    for route, methods in known.http_routes:
        yield from product(methods, (route,), HTTP_STATUSES)
    yield from product((*HTTP_METHODS, "other"), (UNMATCHED_ROUTE,), ("404", "500"))


declare(http_requests, _http_series)
http_request_duration = Histogram(
    "mirror_http_request_duration_seconds",
    "Time to the end of the response, by route.",
    ["route"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
declare(http_request_duration, lambda known: [(route,) for route, _ in known.http_routes] + [(UNMATCHED_ROUTE,)])
blob_responses_in_flight = Gauge(
    "mirror_blob_responses_in_flight",
    "Blob bodies being streamed right now (each holds one open file and at most about one chunk of memory).",
    registry=REGISTRY,
)
open_connections = Gauge(
    "mirror_open_connections",
    "Client connections open right now.",
    registry=REGISTRY,
)
rejected_connections = Counter(
    "mirror_rejected_connections",
    "Client connections refused or cut by the connection limits, by reason: max_connections (the edge was "
    "full), max_connections_per_client (the client's address held its share), header_timeout (no request head "
    "within http.header_timeout). Probes are still served while full.",
    ["reason"],
    registry=REGISTRY,
)
declare(rejected_connections, product(("max_connections", "max_connections_per_client", "header_timeout")))
auth_requests = Counter(
    "mirror_auth_requests",
    "Access decisions by auth method (none, htpasswd, token: registry routes; peer: /_peer/blobs signatures; "
    "admin: the admin token) and result (ok, anonymous, denied: not allowed, invalid: bad or missing credentials).",
    ["method", "result"],
    registry=REGISTRY,
)
declare(
    auth_requests,
    product(("none", "htpasswd", "token"), ("ok", "anonymous", "denied", "invalid")) + product(("peer", "admin"), ("ok", "invalid")),
)
htpasswd_refused_entries = Gauge(
    "mirror_auth_htpasswd_refused_entries",
    "Entries of the htpasswd file (as last read) that can never log in: not user:<bcrypt hash>, e.g. an empty "
    "hash or another scheme. Each is named in a warning when the file is read.",
    registry=REGISTRY,
)
