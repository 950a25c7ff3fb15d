"""The region: peers' reads and answers, and registry events (received, warmed, forgotten, sent)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from mirror.metrics.registry import REGISTRY, declare, product

peer_bytes = Counter(
    "mirror_peer_bytes",
    "Blob bytes received from the region's other edges (bytes from the bucket are mirror_backend_bytes_total).",
    registry=REGISTRY,
)
peer_requests = Counter(
    "mirror_peer_requests",
    "Blob reads asked of another edge of the region, by result (ok, or fallback: the bucket was read instead).",
    ["result"],
    registry=REGISTRY,
)
declare(peer_requests, product(("ok", "fallback")))
peer_fallbacks = Counter(
    "mirror_peer_fallbacks",
    "Blob reads that went to the bucket instead of the owning edge, by reason (unreachable, timeout, refused, "
    "broken, size_mismatch, refill: a digest fetched from a peer is being filled again, e.g. it failed verification).",
    ["reason"],
    registry=REGISTRY,
)
declare(peer_fallbacks, product(("unreachable", "timeout", "refused", "broken", "size_mismatch", "refill")))
peer_served_bytes = Counter(
    "mirror_peer_served_bytes",
    "Blob bytes sent to the region's other edges (GET /_peer/blobs), by where they came from (cache or fill); "
    "not part of mirror_served_bytes_total.",
    ["source"],
    registry=REGISTRY,
)
declare(peer_served_bytes, product(("cache", "fill")))
peer_served_requests = Counter(
    "mirror_peer_served_requests",
    "Blob reads of the region's other edges answered by this edge, by result (hit: from the cache; miss: from a "
    "fill); not part of mirror_cache_requests_total.",
    ["result"],
    registry=REGISTRY,
)
declare(peer_served_requests, product(("hit", "miss")))
peers_live = Gauge(
    "mirror_peers_live",
    "Edges of the region this edge currently shares with (itself included).",
    registry=REGISTRY,
)

events_received = Counter(
    "mirror_events",
    "registry:2 notification events received at /admin/notifications, by action (push, pull, mount, delete) and "
    "result (queued, duplicate, ignored, busy: the queue was full and 503 was answered).",
    ["action", "result"],
    registry=REGISTRY,
)
events_queued = Gauge(
    "mirror_events_queued",
    "Received events waiting to be acted on (at most events.queue_size per kind).",
    registry=REGISTRY,
)
event_warms = Counter(
    "mirror_event_warms",
    "Images a push event warmed on this edge, by result (ok, skipped: outside events.repositories, error).",
    ["result"],
    registry=REGISTRY,
)
event_warm_bytes = Counter(
    "mirror_event_warm_bytes",
    "Blob bytes this edge filled from the bucket to warm pushed images (only the blobs it owns in the region), "
    "and bytes not warmed (skipped: over events.max_event_bytes or no free room in the cache).",
    ["result"],
    registry=REGISTRY,
)
event_forgets = Counter(
    "mirror_event_forgets",
    "Deletes made elsewhere that this edge forgot (tags, links, manifest memory, cached content).",
    registry=REGISTRY,
)
region_messages = Counter(
    "mirror_region_messages",
    "forget/warm messages sent to the region's other edges, by result (sent, failed), and received (received).",
    ["result"],
    registry=REGISTRY,
)
events_sent = Counter(
    "mirror_events_sent",
    "Event envelopes this edge sent to its notifications endpoints for pushes and deletes made through it, by "
    "result (sent, retried: an attempt failed and is retried, dropped: the endpoint's queue was full).",
    ["result"],
    registry=REGISTRY,
)

declare(events_received, product(("push", "pull", "mount", "delete"), ("queued", "duplicate", "ignored", "busy")))
declare(event_warms, product(("ok", "skipped", "error")))
declare(event_warm_bytes, product(("filled", "skipped")))
declare(region_messages, product(("sent", "failed", "received")))
declare(events_sent, product(("sent", "retried", "dropped")))
