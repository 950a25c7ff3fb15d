"""The edge's object graph, built in one direction: each part is made from parts made before it, and nothing is
assigned after construction.

    store, running fills ─► committed files ─► write-back ─┐
    bucket ───────────────────────────────────────────────┴► tiers (remote routes) ─► peer reader ─► edge cache
    edge cache ─► push notices ─► uploads, publisher;  bucket/tiers ─► catalog;  edge, peer reader ─► region events

`mirror.api.app` opens a `Node` in its lifespan and hands its parts to the routes (``app.state``).
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

from mirror import metrics
from mirror.cache import EdgeCache
from mirror.cache.catalog import Catalog
from mirror.cache.committed import CommittedFiles, RunningFills
from mirror.cache.pushed import EdgeCacheNotices
from mirror.cache.store import ContentStore
from mirror.config import Config
from mirror.events.region import RegionEvents
from mirror.events.sender import Sender
from mirror.peers import open_peer_reader
from mirror.push.publish import Publisher
from mirror.push.uploads import Uploads
from mirror.upstream import Source, Upstream, open_upstream
from mirror.upstream.tiered import TieredUpstream
from mirror.upstream.writeback import SHUTDOWN_GRACE, WriteBack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Node:
    """Everything one edge process serves with; `open_node` makes it, `close` ends it in reverse order."""

    edge: EdgeCache
    reader: Source  # blob reads: the region's owning edge first when [peers] is set
    tiers: TieredUpstream | None
    catalog: Catalog
    uploads: Uploads
    publisher: Publisher
    sender: Sender
    region_events: RegionEvents

    async def close(self) -> None:
        if self.tiers is not None:  # write-backs read the cache: let them finish before it closes
            await self.tiers.writeback.close(grace=SHUTDOWN_GRACE)
        await self.region_events.close()
        await self.sender.close()
        await self.edge.close()
        await self.reader.close()


async def open_node(config: Config) -> Node:
    """Build and start the edge's parts; a backend that does not answer yet is logged, not fatal."""
    store = ContentStore(config.cache.dir, config.cache.size)
    running: RunningFills = {}
    bucket = open_upstream(config.storage, pool_size=config.fill.max_connections + 16)
    tiers = None
    if config.upstreams:
        writeback = WriteBack(bucket, local_file=CommittedFiles(store, running))
        tiers = TieredUpstream(bucket, list(config.upstreams), writeback)
    upstream: Upstream = tiers or bucket
    reader = open_peer_reader(upstream, config.peers)  # writes go to the bucket as they are
    await reader.start()
    # EdgeCache declares an Upstream but only reads through it; the peer reader is a Source (never written through).
    edge = EdgeCache(config, reader, store=store, running=running)  # type: ignore[arg-type]  # reads only: see above
    metrics.watch_cache_disk(config.cache.dir, config.cache.size)
    notices = EdgeCacheNotices(edge)
    uploads = Uploads(upstream, notices, config.upload, config.cache.dir / "uploads", readback=bucket.push_reads())
    sender = Sender(config.notifications, source=f"{config.http.host}:{config.http.port}")
    sender.start()
    publisher = Publisher(upstream, notices, delete_enabled=config.storage.delete, events=sender)
    region_events = RegionEvents(edge, reader, config.events, config.peers.timeout)
    region_events.start()
    if await edge.probe():
        log.info("backend %s is reachable", upstream.name)
    else:
        log.warning("backend %s is not reachable; serving from cache until it is", upstream.name)
    # What start-up loaded (botocore's service models, ~120,000 objects) lives as long as the process: out of the
    # cyclic collector's reach, each full collection no longer walks it. Walking it was ~4 % of a cold fill's CPU
    # (py-spy and perf of the cost scenario) and a quarter of receiving a body.
    gc.freeze()
    return Node(edge, reader, tiers, Catalog(upstream), uploads, publisher, sender, region_events)
