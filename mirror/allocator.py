"""glibc's malloc set for a process that moves bytes in pieces of 256 KiB to a few MiB.

By default glibc gives a freed block back to the kernel whenever it can: blocks over a threshold are ``mmap``-ed
and ``munmap``-ed one by one (the threshold starts at 128 KiB and only follows the largest block freed so far), and
the heap's top is trimmed once more than twice that is free. A server that receives a pushed body or a fill's
part in MiB pieces, several alive at once, then puts nearly every piece into pages the kernel has to fault in and
zero again: about one page fault per 4 KiB received, measured through the edge's own HTTP server
(`load/floorstack.py`), where a fault costs more than the copy it serves (on this VM the host's balloon adds to
each). Two fixed thresholds keep such pieces in the heap and reuse its pages: blocks up to `MMAP_THRESHOLD`
come from the heap, and its top is given back once `TRIM_THRESHOLD` of it is free (what a process may keep
unused per malloc arena: a few threads' worth, bounded). With both, the server's CPU for a GiB of request body
went from 1.3-1.9 to about 1.1 CPU-seconds (to 0.7-0.8 with an upload's read window, `mirror.server`).

An operator's own thresholds win (``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, or either in
``GLIBC_TUNABLES``): nothing is set then. Other C libraries (musl) are left as they are.
"""

from __future__ import annotations

import ctypes
import os
import platform

MMAP_THRESHOLD = 2 * 1024 * 1024  # above the edge's largest routine piece (1 MiB reads, 1 MiB body chunks)
TRIM_THRESHOLD = 16 * 1024 * 1024

# mallopt(3) parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _operator_set() -> bool:
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")) or any(
        name in tunables for name in ("malloc.mmap_threshold", "malloc.trim_threshold"))


def tune() -> bool:
    """Set the two thresholds for this process; whether they were set (glibc, and no operator setting)."""
    if platform.libc_ver()[0] != "glibc" or _operator_set():
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    mmap_set = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return bool(mmap_set) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
