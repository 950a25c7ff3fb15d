"""Write remote content back into the shared bucket, in the registry:2 layout, once for every region.

What an edge fetches from a remote registry lands under the route's prefix (``dockerhub/library/alpine``):
manifests (data, revision link), blobs (data, ``_layers`` link) and tags (index and current link), so every other
edge — and the central registry:2 — serves it without asking the remote.

* Blob bytes are written from this node's *verified* cache file, after the fill has committed it: what goes into
  the bucket has passed the digest check. Manifests are checked by the caller before they get here.
* Two edges fetching the same blob at once must not both upload it. The writer claims a marker object
  (`layout.writeback_marker`): it writes its own id, waits `CLAIM_SETTLE` seconds, and reads the marker back; only
  the edge whose id is still there writes. S3 has no create-if-absent everywhere (Storj's gateway lacks it), so
  this is a lease, not a lock: in the rare race both edges write the same bytes, and the copy stays consistent.
  A marker older than `MARKER_LEASE` belongs to a writer that died and is taken over.
* A tag is written only once the manifest it points at is in the bucket, so the bucket never holds a tag whose
  manifest is missing (a manifest this node already had cached is written back from the cache).
* At shutdown queued jobs get `SHUTDOWN_GRACE` seconds to finish.
* Jobs run in the background, a few at a time; when too many are queued, new ones are dropped (and counted): the
  next fetch from the remote asks for the write-back again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Awaitable, Callable

import cachetools
import orjson

from mirror import layout, metrics
from mirror.mediatypes import MANIFEST_MAX_SIZE
from mirror.reference import Digest
from mirror.upstream.base import BackendError, NotFound, Upstream

log = logging.getLogger(__name__)

CLAIM_SETTLE = 0.5
MARKER_LEASE = 600.0
WAIT_FOR_OTHER_WRITER = 600.0
WAIT_FOR_MANIFEST = 300.0
PART_SIZE = 16 * 1024 * 1024  # multipart parts read from the cache file: ≥ 5 MiB (S3), small enough to hold
MAX_JOBS = 256
CONCURRENT_JOBS = 4
MARKER_MAX_SIZE = 4096
SHUTDOWN_GRACE = 10.0

# The verified local file of a digest once its fill has finished: (descriptor, size), or None.
LocalFile = Callable[[Digest], Awaitable[tuple[int, int] | None]]


class WriteBack:
    def __init__(self, bucket: Upstream, local_file: LocalFile | None = None) -> None:
        """`local_file`: where the verified cache file of a digest comes from (None: nothing is cached here, so
        blobs are not written back)."""
        self._bucket = bucket
        self.node = uuid.uuid4().hex
        self.local_file = local_file
        self._jobs: set[asyncio.Task[None]] = set()
        self._queued: set[tuple[str, str, Digest]] = set()
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)
        self._manifests_in_bucket: cachetools.TTLCache[tuple[str, Digest], asyncio.Event] = cachetools.TTLCache(
            maxsize=4096, ttl=WAIT_FOR_MANIFEST
        )

    # -- what the tiered reader asks for ------------------------------------------------------------------

    def blob(self, name: str, digest: Digest) -> None:
        self._start("blob", name, digest, lambda: self._write_blob(name, digest))

    def manifest(self, name: str, digest: Digest, data: bytes) -> None:
        self._manifest_event(name, digest)
        self._start("manifest", name, digest, lambda: self._write_manifest(name, digest, data))

    def tag(self, name: str, tag: str, digest: Digest) -> None:
        self._start("tag", f"{name}:{tag}", digest, lambda: self._write_tag(name, tag, digest))

    async def close(self, grace: float = 0.0) -> None:
        """Give queued jobs up to `grace` seconds to finish (a restart would otherwise lose them), then stop them."""
        if self._jobs and grace > 0:
            await asyncio.wait(list(self._jobs), timeout=grace)
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*list(self._jobs), return_exceptions=True)

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def _start(self, kind: str, subject: str, digest: Digest, make: Callable[[], Awaitable[str]]) -> None:
        identity = (kind, subject, digest)
        if identity in self._queued:
            return
        if len(self._jobs) >= MAX_JOBS:
            metrics.writebacks.labels(kind, "dropped").inc()
            return
        self._queued.add(identity)

        async def run() -> None:
            result = "error"
            try:
                async with self._slots:
                    result = await make()
            except (BackendError, NotFound, OSError) as error:
                log.warning("write-back of %s %s %s failed: %s", kind, subject, digest, error)
            finally:
                metrics.writebacks.labels(kind, result).inc()
                self._queued.discard(identity)

        job = asyncio.create_task(run(), name=f"write-back {kind} {subject}")
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    # -- the jobs -----------------------------------------------------------------------------------------

    async def _write_manifest(self, name: str, digest: Digest, data: bytes) -> str:
        result = "present"
        if not await self._exists(layout.blob_data(digest)):
            await self._bucket.put(layout.blob_data(digest), data)
            result = "written"
        await self._bucket.put(layout.manifest_revision_link(name, digest), str(digest).encode())
        self._manifest_event(name, digest).set()
        return result

    async def _write_tag(self, name: str, tag: str, digest: Digest) -> str:
        link = str(digest).encode()
        try:
            if await self._bucket.read(layout.tag_current_link(name, tag), 1024) == link:
                return "present"
        except NotFound:
            pass
        in_bucket = await self._exists(layout.manifest_revision_link(name, digest))
        if not in_bucket and not await self._manifest_from_cache(name, digest):
            try:
                await asyncio.wait_for(self._manifest_event(name, digest).wait(), WAIT_FOR_MANIFEST)
            except asyncio.TimeoutError:
                return "error"
        await self._bucket.put(layout.tag_index_link(name, tag, digest), link)
        await self._bucket.put(layout.tag_current_link(name, tag), link)
        return "written"

    async def _manifest_from_cache(self, name: str, digest: Digest) -> bool:
        """Write the manifest back from this node's cache, where a cache hit leaves it (no remote fetch follows)."""
        opened = await self.local_file(digest) if self.local_file is not None else None
        if opened is None:
            return False
        fd, size = opened
        try:
            if size > MANIFEST_MAX_SIZE:
                return False
            data = await asyncio.to_thread(os.pread, fd, size, 0)
        finally:
            os.close(fd)
        await self._write_manifest(name, digest, data)
        return True

    async def _write_blob(self, name: str, digest: Digest) -> str:
        key = layout.blob_data(digest)
        result = "present"
        if not await self._exists(key):
            if await self._claim(digest):
                try:
                    result = await self._upload_cached(digest, key) if not await self._exists(key) else "present"
                finally:
                    await self._bucket.delete(layout.writeback_marker(digest))
            else:
                result = "other_writer"
                if not await self._wait_for(key):
                    return "error"
        if result != "error":
            await self._bucket.put(layout.layer_link(name, digest), str(digest).encode())
        return result

    async def _claim(self, digest: Digest) -> bool:
        marker = layout.writeback_marker(digest)
        holder = await self._marker(marker)
        if holder is not None and holder[0] != self.node and time.time() - holder[1] < MARKER_LEASE:
            return False
        await self._bucket.put(marker, orjson.dumps({"node": self.node, "at": time.time()}))
        await asyncio.sleep(CLAIM_SETTLE)
        holder = await self._marker(marker)
        return holder is not None and holder[0] == self.node

    async def _marker(self, key: str) -> tuple[str, float] | None:
        try:
            document = orjson.loads(await self._bucket.read(key, MARKER_MAX_SIZE))
            return str(document["node"]), float(document["at"])
        except NotFound:
            return None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return ("", 0.0)  # unreadable: treat as expired

    async def _wait_for(self, key: str) -> bool:
        deadline = time.monotonic() + WAIT_FOR_OTHER_WRITER
        while time.monotonic() < deadline:
            if await self._exists(key):
                return True
            await asyncio.sleep(1.0)
        return False

    async def _upload_cached(self, digest: Digest, key: str) -> str:
        opened = await self.local_file(digest) if self.local_file is not None else None
        if opened is None:
            return "error"  # the fill failed or the file was evicted: the next fetch asks again
        fd, size = opened
        try:
            if size <= PART_SIZE:
                await self._bucket.put(key, await asyncio.to_thread(os.pread, fd, size, 0))
                return "written"
            upload_id = await self._bucket.start_multipart(key)
            try:
                parts = []
                for number, start in enumerate(range(0, size, PART_SIZE), start=1):
                    length = min(PART_SIZE, size - start)
                    data = await asyncio.to_thread(os.pread, fd, length, start)
                    parts.append((number, await self._bucket.put_part(key, upload_id, number, data, length)))
                await self._bucket.complete_multipart(key, upload_id, parts)
            except BaseException:
                await self._bucket.abort_multipart(key, upload_id)
                raise
            return "written"
        finally:
            os.close(fd)

    async def _exists(self, key: str) -> bool:
        try:
            await self._bucket.stat(key)
        except NotFound:
            return False
        return True

    def _manifest_event(self, name: str, digest: Digest) -> asyncio.Event:
        event = self._manifests_in_bucket.get((name, digest))
        if event is None:
            event = self._manifests_in_bucket[(name, digest)] = asyncio.Event()
        return event
