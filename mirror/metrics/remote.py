"""Remote registries behind the bucket (``[[upstream]]`` routes) and write-backs into it."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from mirror.metrics.registry import REGISTRY, UNKNOWN_AT_START, declare, product

remote_requests = Counter(
    "mirror_remote_requests",
    "Requests to remote registries, by route (its configured ns), op (head, get) and status "
    "(ok, not_found, rate_limited, refused: a redirect or token realm led to an address the route may not dial, error).",
    ["route", "op", "status"],
    registry=REGISTRY,
)
declare(remote_requests, lambda known: product(known.remote_routes, ("head", "get"), ("ok", "not_found", "rate_limited", "refused", "error")))
remote_bytes = Counter(
    "mirror_remote_bytes",
    "Manifest and blob bytes read from remote registries, by route.",
    ["route"],
    registry=REGISTRY,
)
declare(remote_bytes, lambda known: product(known.remote_routes))
remote_ratelimit_remaining = Gauge(
    "mirror_remote_ratelimit_remaining",
    "The last ratelimit-remaining a remote registry announced, by route.",
    ["route"],
    registry=REGISTRY,
)
declare(remote_ratelimit_remaining, lambda known: product(known.remote_routes))
UNKNOWN_AT_START.add(remote_ratelimit_remaining)
remote_stale = Counter(
    "mirror_remote_stale",
    "Tags answered from the bucket's copy because the remote failed or rate limited us, by route.",
    ["route"],
    registry=REGISTRY,
)
declare(remote_stale, lambda known: product(known.remote_routes))
writebacks = Counter(
    "mirror_writebacks",
    "Remote content written back into the bucket, by kind (blob, manifest, tag) and result "
    "(written, present, other_writer, dropped, error).",
    ["kind", "result"],
    registry=REGISTRY,
)
declare(writebacks, product(("blob", "manifest", "tag"), ("written", "present", "other_writer", "dropped", "error")))
