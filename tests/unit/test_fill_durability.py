"""A fill's file reaches the disk before the index points at it (issue 9 item 7): after a power loss the cache
must never hold an index entry for a zero-filled file that would then be served as a hit."""

from __future__ import annotations

import hashlib
import os
import random

from starlette.testclient import TestClient

from mirror import config
from mirror.api import create_app
from mirror.cache.store import ContentStore

BLOB = random.Random(7).randbytes(3 * 1024 * 1024)
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


def _environ(root, cache) -> dict[str, str]:
    return {
        "MIRROR_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root),
        "MIRROR_CACHE_DIR": str(cache),
        "MIRROR_AUTH_ANONYMOUS": "pull,push",
        "MIRROR_FILL_PART_SIZE": "1MiB",
        "MIRROR_FILL_FIRST_PART_SIZE": "256KiB",
        "MIRROR_FILL_MIN_PART_SIZE": "256KiB",
    }


def test_a_filled_blob_is_fdatasynced_before_it_is_committed(tmp_path, monkeypatch):
    root = tmp_path / "root"
    with TestClient(create_app(config.load(None, environ=_environ(root, tmp_path / "pusher")))) as pusher:
        assert pusher.post(f"/v2/team/app/blobs/uploads/?digest={DIGEST}", content=BLOB).status_code == 201

    events: list[tuple[str, str]] = []
    real_fdatasync, real_commit = os.fdatasync, ContentStore.commit

    def recording_fdatasync(fd: int) -> None:
        real_fdatasync(fd)
        events.append(("synced", os.readlink(f"/proc/self/fd/{fd}")))

    def recording_commit(store: ContentStore, digest, path, size: int) -> bool:
        events.append(("committed", str(path)))
        return real_commit(store, digest, path, size)

    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    monkeypatch.setattr(ContentStore, "commit", recording_commit)
    with TestClient(create_app(config.load(None, environ=_environ(root, tmp_path / "edge")))) as edge:
        response = edge.get(f"/v2/team/app/blobs/{DIGEST}")
        assert response.status_code == 200 and response.content == BLOB

    committed = [index for index, (event, _) in enumerate(events) if event == "committed"]
    assert len(committed) == 1
    partial = events[committed[0]][1]
    assert ("synced", partial) in events[: committed[0]], events
