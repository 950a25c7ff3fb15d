"""Client traffic, the bucket, fills and the cache's content: what a request costs and where its bytes came from."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from mirror.metrics.registry import DURATION_BUCKETS, REGISTRY, declare, product

cache_requests = Counter(
    "mirror_cache_requests",
    "Cache lookups by kind (manifest, blob, tag, referrers; link: stale answers only) and result (hit, miss, stale).",
    ["kind", "result"],
    registry=REGISTRY,
)
declare(
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
declare(served_bytes, product(("cache", "fill")))
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
declare(backend_bytes, product(("read", "read_range", "push_read")))
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
declare(uploads, product(("ok", "digest_invalid", "too_large", "error")))
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
declare(backend_requests, product(BACKEND_OPS, ("ok", "not_found", "error", "cancelled")))
fills = Counter(
    "mirror_fills",
    "Finished fills by result (ok, uncached: served through, digest_mismatch, error, stopped: nobody entitled).",
    ["result"],
    registry=REGISTRY,
)
declare(fills, product(("ok", "uncached", "digest_mismatch", "error", "stopped")))
fill_waiters = Counter(
    "mirror_fill_waiters",
    "Requests that joined a fill already running for the same digest.",
    registry=REGISTRY,
)
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
declare(fill_uncached, product(("too_large", "no_room", "no_disk")))
prefetch_bytes = Counter(
    "mirror_prefetch_bytes",
    "Layer bytes an image manifest served made this edge prefetch (fill.prefetch), by result (filled: committed; "
    "skipped: over fill.prefetch_max_bytes, or no free room in the cache; failed: the fill failed).",
    ["result"],
    registry=REGISTRY,
)
declare(prefetch_bytes, product(("filled", "skipped", "failed")))
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
declare(fill_hedges, product(("won", "lost")))
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

