"""OCI 1.1 referrers: the index the edge keeps beside the registry:2 layout, its writer and its rebuild.

- `index`: what one index entry holds (a referrers descriptor), built from a manifest exactly as spec.md asks,
  and how a referrers list is filtered and paged. Pure: no I/O.
- `writer`: records and forgets entries in the bucket when a manifest with a ``subject`` is pushed or deleted.
- `reindex`: ``edge-mirror reindex [NAME]`` rebuilds the index from the manifest revisions (for manifests pushed
  through registry:2, which writes no index).

The reader that serves ``GET /v2/<name>/referrers/<digest>`` lives in the cache layer (`mirror.cache.referrers`).
Imports: `mirror.push` and `mirror.cache` use this package; it uses only `mirror.upstream` and the shared modules.
"""
