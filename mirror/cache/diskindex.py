"""The diskcache adapter: the two questions the content store (`mirror.cache.store`) asks its index for which
diskcache has no public call. Everything the edge relies on of diskcache's internals is here:

- ``Cache._sql``: a bound ``execute`` on the cache's SQLite connection;
- the ``Cache`` table's ``key``, ``filename`` (relative to the cache directory, NULL for values kept inline) and
  ``access_time`` columns, the last kept current on each ``get`` under the least-recently-used policy.

``tests/unit/test_diskindex.py`` pins exactly that, so a diskcache release that changes it fails there.
"""

from __future__ import annotations

import diskcache


def stored_filenames(index: diskcache.Cache) -> set[str]:
    """The files the index knows, relative to its directory."""
    rows = index._sql("SELECT filename FROM Cache WHERE filename IS NOT NULL").fetchall()
    return {row[0] for row in rows}


def least_recently_used(index: diskcache.Cache) -> str | None:
    """The key read (or stored) longest ago, or None when the index is empty. diskcache's own cull drops ten
    entries a step, far too coarse when entries are gigabyte blobs; this lets the store evict one at a time."""
    rows = index._sql("SELECT key FROM Cache ORDER BY access_time LIMIT 1").fetchall()
    return rows[0][0] if rows else None
