"""A multipart part sent from the middle of a spool file, as a reused spool holds it (`mirror.push.spool.SpoolPool`):
bytes before it, and an older part's bytes after it, neither of which may reach the object."""

from __future__ import annotations

from pathlib import Path

from mirror.upstream import Upstream

BEFORE = b"before the part"
AFTER = b"an older part's bytes"


async def part_from_the_middle_of_a_spool(backend: Upstream, spool_path: Path, key: str, data: bytes) -> bytes:
    """`data` put as the one part of a multipart upload of `key` from a spool file holding more around it, the
    upload completed: what the backend then holds at `key` (read up to the whole spool's length)."""
    upload_id = await backend.start_multipart(key)
    with open(spool_path, "w+b") as spool:
        spool.write(BEFORE + data + AFTER)
        spool.seek(len(BEFORE))
        etag = await backend.put_part(key, upload_id, 1, spool, len(data))
    await backend.complete_multipart(key, upload_id, [(1, etag)])
    return await backend.read(key, len(BEFORE) + len(data) + len(AFTER))
