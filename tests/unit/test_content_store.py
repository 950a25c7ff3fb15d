"""The content store after a crash: what the index knows survives, what it does not know is removed."""

from __future__ import annotations

import hashlib

from mirror.cache.store import ContentStore
from mirror.reference import parse_digest


def test_a_content_file_the_index_never_recorded_is_removed_at_start(tmp_path):
    data = b"committed content"
    digest = parse_digest("sha256:" + hashlib.sha256(data).hexdigest())
    store = ContentStore(tmp_path / "cache", 1 << 30)
    store.put_bytes(digest, data)
    store.close()
    # A kill -9 between a commit's rename into the index directory and its index row leaves such a file.
    orphan = tmp_path / "cache" / "content" / "ab" / "cd" / "0123456789abcdef.val"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x" * 4096)

    reopened = ContentStore(tmp_path / "cache", 1 << 30)
    try:
        assert not orphan.exists()
        assert reopened.read_small(digest, 1024) == data
    finally:
        reopened.close()
