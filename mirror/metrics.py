"""Every Prometheus metric of the mirror, defined once. Names are a contract with the shipped dashboard.

Every labelled metric declares, right below its definition, every label combination it can take (`_declare`):
those series exist at 0 from start, so the first event of each is seen by ``rate()`` and ``increase()`` (a
series born holding its first event never counts it). Labels whose values come from the configuration (the
remote routes, the HTTP routes an edge serves) are declared as a function of `Known`, and `start` creates them
when the edge starts. A test checks that every labelled metric here is declared.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

# The *_created series double the exposition without telling an operator anything a restart counter doesn't.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client 0.2x leaves it unannotated

REGISTRY = CollectorRegistry(auto_describe=True)
# Resident memory, open fds, CPU seconds (process_*), the Python version (python_info) and GC counts (python_gc_*).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


@dataclass(frozen=True)
class Known:
    """Label values that come from the configuration: the HTTP routes served (name, methods) and the remote
    routes (their ``ns``)."""

    http_routes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    remote_routes: tuple[str, ...] = ()


Combinations = Callable[[Known], Iterable[tuple[str, ...]]]
# Every labelled metric -> every label combination it can take on an edge with `Known` config.
DECLARED: dict[MetricWrapperBase, Combinations] = {}
# Gauges whose declared series start at NaN ("not known yet"), not 0.
_UNKNOWN_AT_START: set[Gauge] = set()


def product(*values: Iterable[str]) -> list[tuple[str, ...]]:
    return list(itertools.product(*values))


def _declare(metric: MetricWrapperBase, combinations: Iterable[tuple[str, ...]] | Combinations) -> None:
    if callable(combinations):
        DECLARED[metric] = combinations
    else:
        fixed = [tuple(combination) for combination in combinations]
        DECLARED[metric] = lambda known: fixed


def series(known: Known) -> dict[MetricWrapperBase, list[tuple[str, ...]]]:
    """Every declared label combination of every labelled metric, for an edge with `known` config."""
    return {metric: list(combinations(known)) for metric, combinations in DECLARED.items()}


def start(known: Known = Known()) -> None:
    """Create every declared series (at 0; NaN for a gauge not known yet). Called at import for the label values
    the code knows, and by the app at start-up with the configured ones."""
    for metric, combinations in series(known).items():
        for combination in combinations:
            child = metric.labels(*combination)
            if isinstance(child, Gauge) and metric in _UNKNOWN_AT_START:
                child.set(float("nan"))


cache_requests = Counter(
    "mirror_cache_requests",
    "Cache lookups by kind (manifest, blob, tag, referrers; link: stale answers only) and result (hit, miss, stale).",
    ["kind", "result"],
    registry=REGISTRY,
)
_declare(
    cache_requests,
    product(("manifest", "blob"), ("hit", "miss")) + product(("tag", "referrers"), ("hit", "miss", "stale")) + [("link", "stale")],
)
served_bytes = Counter(
    "mirror_served_bytes",
    "Body bytes sent to clients, by where they came from (cache file or a running fill). Answers to the region's "
    "other edges are mirror_peer_served_bytes_total.",
    ["source"],
    registry=REGISTRY,
)
_declare(served_bytes, product(("cache", "fill")))
zero_copy_bytes = Counter(
    "mirror_zero_copy_bytes",
    "Body bytes handed to the kernel with sendfile, from cached blobs and from fills in progress (part of "
    "mirror_served_bytes_total and mirror_peer_served_bytes_total; the rest were copied through the process, e.g. "
    "on TLS connections).",
    registry=REGISTRY,
)
backend_bytes = Counter(
    "mirror_backend_bytes",
    "Bytes read from the storage backend, by operation (read: links and manifests; read_range: blob fills; "
    "push_read: pushed data read back to verify and publish it).",
    ["op"],
    registry=REGISTRY,
)
_declare(backend_bytes, product(("read", "read_range", "push_read")))
backend_written_bytes = Counter(
    "mirror_backend_written_bytes",
    "Bytes written to the storage backend by pushes.",
    registry=REGISTRY,
)
uploads = Counter(
    "mirror_uploads",
    "Finished blob uploads by result (ok, digest_invalid, too_large, error).",
    ["result"],
    registry=REGISTRY,
)
_declare(uploads, product(("ok", "digest_invalid", "too_large", "error")))
backend_requests = Counter(
    "mirror_backend_requests",
    "Requests to the storage backend by operation and outcome (ok, not_found, error, cancelled: the edge stopped "
    "waiting, e.g. a fill stopped because the repository check failed). op=push_read: pushed data read back.",
    ["op", "status"],
    registry=REGISTRY,
)
BACKEND_OPS = (
    "probe", "stat", "read", "list", "put", "delete", "delete_tree", "copy", "start_multipart", "put_part",
    "complete_multipart", "list_parts", "abort_multipart", "multipart_uploads", "read_first", "read_last", "read_range",
    "push_read",
)
_declare(backend_requests, product(BACKEND_OPS, ("ok", "not_found", "error", "cancelled")))
fills = Counter(
    "mirror_fills",
    "Finished fills by result (ok, uncached: served through, digest_mismatch, error, stopped: nobody entitled).",
    ["result"],
    registry=REGISTRY,
)
_declare(fills, product(("ok", "uncached", "digest_mismatch", "error", "stopped")))
fill_waiters = Counter(
    "mirror_fill_waiters",
    "Requests that joined a fill already running for the same digest.",
    registry=REGISTRY,
)
# Seconds, about log-spaced from 1 ms (a small blob filled over loopback) to 10 min (a large one over a slow link).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
fill_duration = Histogram(
    "mirror_fill_duration_seconds",
    "Time from the start of a fill to its commit or failure.",
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
fill_part_retries = Counter(
    "mirror_fill_part_retries",
    "Ranged backend reads of a fill part that failed and were retried.",
    registry=REGISTRY,
)
fill_uncached = Counter(
    "mirror_fill_uncached",
    "Blobs served through without being cached, by reason (too_large: over cache.size; no_room: partials of "
    "running fills already claim the cache; no_disk: the local disk is full or refuses the partial file).",
    ["reason"],
    registry=REGISTRY,
)
_declare(fill_uncached, product(("too_large", "no_room", "no_disk")))
prefetch_bytes = Counter(
    "mirror_prefetch_bytes",
    "Layer bytes an image manifest served made this edge prefetch (fill.prefetch), by result (filled: committed; "
    "skipped: over fill.prefetch_max_bytes, or no free room in the cache; failed: the fill failed).",
    ["result"],
    registry=REGISTRY,
)
_declare(prefetch_bytes, product(("filled", "skipped", "failed")))
prefetch_served_bytes = Counter(
    "mirror_prefetch_served_bytes",
    "Bytes of prefetched blobs that a client then asked for (counted once per blob, at its first request).",
    registry=REGISTRY,
)
fill_hedges = Counter(
    "mirror_fill_hedges",
    "Ranged GETs raced by a second GET for the same bytes because their first byte was late, by whether the "
    "second GET won.",
    ["result"],
    registry=REGISTRY,
)
_declare(fill_hedges, product(("won", "lost")))
cache_size_bytes = Gauge(
    "mirror_cache_size_bytes",
    "Bytes of content held in the disk cache.",
    registry=REGISTRY,
)
cache_evictions = Counter(
    "mirror_cache_evictions",
    "Content entries evicted from the disk cache (least recently used first).",
    registry=REGISTRY,
)
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


_declare(http_requests, _http_series)
http_request_duration = Histogram(
    "mirror_http_request_duration_seconds",
    "Time to the end of the response, by route.",
    ["route"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
_declare(http_request_duration, lambda known: [(route,) for route, _ in known.http_routes] + [(UNMATCHED_ROUTE,)])
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
_declare(rejected_connections, product(("max_connections", "max_connections_per_client", "header_timeout")))
auth_requests = Counter(
    "mirror_auth_requests",
    "Access decisions by auth method (none, htpasswd, token: registry routes; peer: /_peer/blobs signatures; "
    "admin: the admin token) and result (ok, anonymous, denied: not allowed, invalid: bad or missing credentials).",
    ["method", "result"],
    registry=REGISTRY,
)
_declare(
    auth_requests,
    product(("none", "htpasswd", "token"), ("ok", "anonymous", "denied", "invalid")) + product(("peer", "admin"), ("ok", "invalid")),
)
htpasswd_refused_entries = Gauge(
    "mirror_auth_htpasswd_refused_entries",
    "Entries of the htpasswd file (as last read) that can never log in: not user:<bcrypt hash>, e.g. an empty "
    "hash or another scheme. Each is named in a warning when the file is read.",
    registry=REGISTRY,
)
cache_capacity_bytes = Gauge(
    "mirror_cache_capacity_bytes",
    "The configured cache size (cache.size): content is evicted down to it.",
    registry=REGISTRY,
)
cache_disk_free_bytes = Gauge(
    "mirror_cache_disk_free_bytes",
    "Free bytes on the filesystem holding the cache directory, read at scrape time.",
    registry=REGISTRY,
)
cache_disk_total_bytes = Gauge(
    "mirror_cache_disk_total_bytes",
    "Size of the filesystem holding the cache directory.",
    registry=REGISTRY,
)
backend_up = Gauge(
    "mirror_backend_up",
    "1 when the last backend probe succeeded, else 0.",
    registry=REGISTRY,
)
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
_declare(peer_requests, product(("ok", "fallback")))
peer_fallbacks = Counter(
    "mirror_peer_fallbacks",
    "Blob reads that went to the bucket instead of the owning edge, by reason (unreachable, timeout, refused, "
    "broken, size_mismatch, refill: a digest fetched from a peer is being filled again, e.g. it failed verification).",
    ["reason"],
    registry=REGISTRY,
)
_declare(peer_fallbacks, product(("unreachable", "timeout", "refused", "broken", "size_mismatch", "refill")))
peer_served_bytes = Counter(
    "mirror_peer_served_bytes",
    "Blob bytes sent to the region's other edges (GET /_peer/blobs), by where they came from (cache or fill); "
    "not part of mirror_served_bytes_total.",
    ["source"],
    registry=REGISTRY,
)
_declare(peer_served_bytes, product(("cache", "fill")))
peer_served_requests = Counter(
    "mirror_peer_served_requests",
    "Blob reads of the region's other edges answered by this edge, by result (hit: from the cache; miss: from a "
    "fill); not part of mirror_cache_requests_total.",
    ["result"],
    registry=REGISTRY,
)
_declare(peer_served_requests, product(("hit", "miss")))
peers_live = Gauge(
    "mirror_peers_live",
    "Edges of the region this edge currently shares with (itself included).",
    registry=REGISTRY,
)

remote_requests = Counter(
    "mirror_remote_requests",
    "Requests to remote registries, by route (its configured ns), op (head, get) and status "
    "(ok, not_found, rate_limited, refused: a redirect or token realm led to an address the route may not dial, error).",
    ["route", "op", "status"],
    registry=REGISTRY,
)
_declare(remote_requests, lambda known: product(known.remote_routes, ("head", "get"), ("ok", "not_found", "rate_limited", "refused", "error")))
remote_bytes = Counter(
    "mirror_remote_bytes",
    "Manifest and blob bytes read from remote registries, by route.",
    ["route"],
    registry=REGISTRY,
)
_declare(remote_bytes, lambda known: product(known.remote_routes))
remote_ratelimit_remaining = Gauge(
    "mirror_remote_ratelimit_remaining",
    "The last ratelimit-remaining a remote registry announced, by route.",
    ["route"],
    registry=REGISTRY,
)
_declare(remote_ratelimit_remaining, lambda known: product(known.remote_routes))
_UNKNOWN_AT_START.add(remote_ratelimit_remaining)
remote_stale = Counter(
    "mirror_remote_stale",
    "Tags answered from the bucket's copy because the remote failed or rate limited us, by route.",
    ["route"],
    registry=REGISTRY,
)
_declare(remote_stale, lambda known: product(known.remote_routes))
writebacks = Counter(
    "mirror_writebacks",
    "Remote content written back into the bucket, by kind (blob, manifest, tag) and result "
    "(written, present, other_writer, dropped, error).",
    ["kind", "result"],
    registry=REGISTRY,
)
_declare(writebacks, product(("blob", "manifest", "tag"), ("written", "present", "other_writer", "dropped", "error")))

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

_declare(events_received, product(("push", "pull", "mount", "delete"), ("queued", "duplicate", "ignored", "busy")))
_declare(event_warms, product(("ok", "skipped", "error")))
_declare(event_warm_bytes, product(("filled", "skipped")))
_declare(region_messages, product(("sent", "failed", "received")))
_declare(events_sent, product(("sent", "retried", "dropped")))


def watch_cache_disk(directory: Path, capacity: int) -> None:
    """Report the cache's configured size, and its filesystem's free and total bytes on every scrape."""
    cache_capacity_bytes.set(capacity)

    def statvfs(field: str) -> float:
        try:
            result = os.statvfs(directory)
        except OSError:
            return float("nan")
        return float(getattr(result, field) * result.f_frsize)

    cache_disk_free_bytes.set_function(lambda: statvfs("f_bavail"))
    cache_disk_total_bytes.set_function(lambda: statvfs("f_blocks"))


start()


def exposition() -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(REGISTRY)
