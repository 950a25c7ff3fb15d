"""Every Prometheus metric of the mirror, defined once. Names are a contract with the shipped dashboard."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

# The *_created series double the exposition without telling an operator anything a restart counter doesn't.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

cache_requests = Counter(
    "mirror_cache_requests",
    "Cache lookups by kind (manifest, blob, tag, referrers; link: stale answers only) and result (hit, miss, stale).",
    ["kind", "result"],
    registry=REGISTRY,
)
served_bytes = Counter(
    "mirror_served_bytes",
    "Body bytes sent to clients, by where they came from (cache file or a running fill).",
    ["source"],
    registry=REGISTRY,
)
zero_copy_bytes = Counter(
    "mirror_zero_copy_bytes",
    "Body bytes handed to the kernel with sendfile, from cached blobs and from fills in progress (part of the "
    "served bytes; the rest were copied through the process, e.g. on TLS connections).",
    registry=REGISTRY,
)
backend_bytes = Counter(
    "mirror_backend_bytes",
    "Bytes read from the storage backend, by operation (read: links and manifests; read_range: blob fills).",
    ["op"],
    registry=REGISTRY,
)
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
backend_requests = Counter(
    "mirror_backend_requests",
    "Requests to the storage backend by operation and outcome (ok, not_found, error).",
    ["op", "status"],
    registry=REGISTRY,
)
fills = Counter(
    "mirror_fills",
    "Finished fills by result (ok, uncached: served through, digest_mismatch, error, stopped: nobody entitled).",
    ["result"],
    registry=REGISTRY,
)
fill_waiters = Counter(
    "mirror_fill_waiters",
    "Requests that joined a fill already running for the same digest.",
    registry=REGISTRY,
)
fill_duration = Histogram(
    "mirror_fill_duration_seconds",
    "Time from the start of a fill to its commit or failure.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
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
fill_hedges = Counter(
    "mirror_fill_hedges",
    "Ranged GETs raced by a second GET for the same bytes because their first byte was late, by whether the "
    "second GET won.",
    ["result"],
    registry=REGISTRY,
)
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
    "HTTP requests answered, by method, route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
http_request_duration = Histogram(
    "mirror_http_request_duration_seconds",
    "Time to the end of the response, by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
    registry=REGISTRY,
)
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
for _reason in ("max_connections", "max_connections_per_client", "header_timeout"):  # mirror.admission.REASONS
    rejected_connections.labels(_reason)
auth_requests = Counter(
    "mirror_auth_requests",
    "Access decisions by auth method (none, htpasswd, token) and result (ok, anonymous, denied, invalid).",
    ["method", "result"],
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
peer_fallbacks = Counter(
    "mirror_peer_fallbacks",
    "Blob reads that went to the bucket instead of the owning edge, by reason (unreachable, timeout, refused, "
    "broken, size_mismatch, refill: a digest fetched from a peer is being filled again, e.g. it failed verification).",
    ["reason"],
    registry=REGISTRY,
)
peers_live = Gauge(
    "mirror_peers_live",
    "Edges of the region this edge currently shares with (itself included).",
    registry=REGISTRY,
)

remote_requests = Counter(
    "mirror_remote_requests",
    "Requests to remote registries, by route (its configured ns), op (head, get) and status "
    "(ok, not_found, rate_limited, error).",
    ["route", "op", "status"],
    registry=REGISTRY,
)
remote_bytes = Counter(
    "mirror_remote_bytes",
    "Manifest and blob bytes read from remote registries, by route.",
    ["route"],
    registry=REGISTRY,
)
remote_ratelimit_remaining = Gauge(
    "mirror_remote_ratelimit_remaining",
    "The last ratelimit-remaining a remote registry announced, by route.",
    ["route"],
    registry=REGISTRY,
)
remote_stale = Counter(
    "mirror_remote_stale",
    "Tags answered from the bucket's copy because the remote failed or rate limited us, by route.",
    ["route"],
    registry=REGISTRY,
)
writebacks = Counter(
    "mirror_writebacks",
    "Remote content written back into the bucket, by kind (blob, manifest, tag) and result "
    "(written, present, other_writer, dropped, error).",
    ["kind", "result"],
    registry=REGISTRY,
)


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


def exposition() -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(REGISTRY)
