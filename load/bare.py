"""What a cold pull can reach on this machine with no edge at all: the `bare_parallel` ceiling of `cold_pull`.

`parallel_get` reads one object with `streams` ranged GETs at once (aioboto3, as the edge does, 1 MiB
`iter_chunks`), straight from SeaweedFS through an emulator of its own, and drops the bytes (no hashing, no
disk): the time the emulated link, SeaweedFS and one Python reader need to move the blob on these cores.
"""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

from load.components import ACCESS_KEY, BUCKET, SECRET_KEY

READ_CHUNK = 1024 * 1024


def ranges(size: int, streams: int) -> list[tuple[int, int]]:
    """`size` bytes cut into `streams` (at most) contiguous ranges of about equal length, as [start, end)."""
    step = max(1, -(-size // max(1, streams)))
    return [(start, min(size, start + step)) for start in range(0, size, step)]


async def parallel_get(endpoint: str, key: str, size: int, streams: int) -> float:
    """Seconds to read `key` (`size` bytes) with `streams` parallel ranged GETs, bytes dropped."""
    import aioboto3
    from aiobotocore.config import AioConfig

    config = AioConfig(max_pool_connections=streams, s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    async with aioboto3.Session().client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                         region_name="us-east-1", config=config) as s3:
        await s3.head_bucket(Bucket=BUCKET)  # one warm connection, as a running edge has

        async def one(start: int, end: int) -> int:
            response = await s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{end - 1}")
            received = 0
            async for chunk in response["Body"].iter_chunks(READ_CHUNK):
                received += len(chunk)
            if received != end - start:
                raise RuntimeError(f"{key} bytes {start}-{end - 1}: got {received}")
            return received

        started = time.perf_counter()
        await asyncio.gather(*(one(start, end) for start, end in ranges(size, streams)))
        return time.perf_counter() - started



async def parallel_get_many(endpoint: str, blobs: list[tuple[str, int]], streams: int, first: Sequence[str] = ()) -> float:
    """Seconds to read every ``(key, size)`` of `blobs` at once with one client, `streams` ranged GETs shared in
    proportion to their sizes (at least one each), bytes dropped: a whole image moved with no edge and no client
    limit of three layers at a time. The keys of `first` are read whole one after the other before the blobs (a
    tag's link, then its manifest: what any server reads before it knows the layers), inside the time."""
    import aioboto3
    from aiobotocore.config import AioConfig

    total = sum(size for _, size in blobs) or 1
    cut = [(key, start, end) for key, size in blobs for start, end in ranges(size, max(1, round(streams * size / total)))]
    config = AioConfig(max_pool_connections=len(cut), s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    async with aioboto3.Session().client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                         region_name="us-east-1", config=config) as s3:
        await s3.head_bucket(Bucket=BUCKET)  # one warm connection, as a running edge has

        async def one(key: str, start: int, end: int) -> None:
            response = await s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{end - 1}")
            received = 0
            async for chunk in response["Body"].iter_chunks(READ_CHUNK):
                received += len(chunk)
            if received != end - start:
                raise RuntimeError(f"{key} bytes {start}-{end - 1}: got {received}")

        started = time.perf_counter()
        for key in first:
            await (await s3.get_object(Bucket=BUCKET, Key=key))["Body"].read()
        await asyncio.gather(*(one(key, start, end) for key, start, end in cut))
        return time.perf_counter() - started
