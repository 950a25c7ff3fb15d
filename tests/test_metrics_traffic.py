"""Traffic metrics count what they say: a push's reads of its own data are op="push_read", not the link and
manifest reads of pulls (op="read")."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.blobs import push_blob
from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage

MIB = 1024 * 1024
# Link, state and manifest reads of one push: a few small objects.
SMALL_READS = 64 * 1024


def test_push_reads_of_pushed_data_are_not_counted_as_pull_reads(tmp_path: Path):
    (tmp_path / "root").mkdir()
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "root"), auth=ANONYMOUS_PUSH) as edge:
        push_blob(edge.url, "team/pushed", os.urandom(3 * MIB))  # under one part: kept as the upload's tail
        scraped = edge.metrics()
    assert scraped.value("mirror_backend_bytes_total", op="read") < SMALL_READS
    assert scraped.value("mirror_backend_bytes_total", op="push_read") >= 3 * MIB
    assert scraped.value("mirror_backend_requests_total", op="push_read", status="ok") >= 1
