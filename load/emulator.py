"""A Storj-like link between an S3 client and the real S3 server, as seen from a far region.

Bytes pass unchanged (SigV4 signatures stay valid, Range works). Each response's first byte is held for a
time-to-first-byte drawn from a bimodal distribution (default 80 ms, or 400 ms one time in five); every
connection is capped (default 20 MB/s, about what one stream through Storj's hosted gateway gets) and so is
the sum of all connections (default 400 MB/s).

    python -m load.emulator --listen 127.0.0.1:9000 --upstream 127.0.0.1:8333 [--stats-file F]

A response is recognised as the first upstream bytes after the client sent something, which is exact for
S3 clients (one request in flight per connection, no pipelining).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field

READ_SIZE = 256 * 1024
MB = 1000 * 1000


class Pacer:
    """A byte-rate limiter: `await pace(n)` returns when sending `n` more bytes keeps the rate under the cap."""

    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self._next_free = time.monotonic()

    async def pace(self, size: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        start = max(now, self._next_free)
        self._next_free = start + size / self.rate
        if self._next_free - now > 0.002:
            await asyncio.sleep(self._next_free - now)


@dataclass
class LinkSettings:
    upstream_host: str
    upstream_port: int
    ttfb_fast: float = 0.080
    ttfb_slow: float = 0.400
    slow_fraction: float = 0.2
    connection_rate: float = 20 * MB
    aggregate_rate: float = 400 * MB
    seed: int = 1


@dataclass
class LinkStats:
    connections: int = 0
    responses: int = 0
    bytes_to_client: int = 0
    bytes_to_upstream: int = 0
    ttfb_total: float = 0.0
    started: float = field(default_factory=time.time)


class Link:
    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self.stats = LinkStats()
        self.aggregate = Pacer(settings.aggregate_rate)
        self._random = random.Random(settings.seed)

    def draw_ttfb(self) -> float:
        slow = self._random.random() < self.settings.slow_fraction
        return self.settings.ttfb_slow if slow else self.settings.ttfb_fast

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.settings.upstream_host, self.settings.upstream_port
            )
        except OSError:
            client_writer.close()
            return
        awaiting_response = asyncio.Event()
        connection = Pacer(self.settings.connection_rate)

        async def client_to_upstream() -> None:
            while data := await client_reader.read(READ_SIZE):
                awaiting_response.set()
                self.stats.bytes_to_upstream += len(data)
                upstream_writer.write(data)
                await upstream_writer.drain()
            if upstream_writer.can_write_eof():
                upstream_writer.write_eof()

        async def upstream_to_client() -> None:
            while data := await upstream_reader.read(READ_SIZE):
                if awaiting_response.is_set():
                    awaiting_response.clear()
                    delay = self.draw_ttfb()
                    self.stats.responses += 1
                    self.stats.ttfb_total += delay
                    await asyncio.sleep(delay)
                await connection.pace(len(data))
                await self.aggregate.pace(len(data))
                self.stats.bytes_to_client += len(data)
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionError, OSError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_writer, upstream_writer):
                writer.close()


async def serve(listen_host: str, listen_port: int, settings: LinkSettings, stats_file: str | None) -> None:
    link = Link(settings)
    server = await asyncio.start_server(link.handle, listen_host, listen_port, limit=READ_SIZE * 4)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def write_stats() -> None:
        while True:
            if stats_file:
                staging = f"{stats_file}.tmp"
                with open(staging, "w") as out:
                    json.dump(link.stats.__dict__, out)
                os.replace(staging, stats_file)
            await asyncio.sleep(0.2)

    reporter = asyncio.create_task(write_stats())
    async with server:
        await stop.wait()
    reporter.cancel()


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _rate(text: str) -> float:
    """``20MB`` (per second), ``400MB``, ``0`` for no cap."""
    text = text.strip().upper().removesuffix("/S")
    for suffix, scale in (("GB", 1000**3), ("MB", MB), ("KB", 1000), ("B", 1)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m load.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="host:port to accept S3 clients on")
    parser.add_argument("--upstream", required=True, help="host:port of the real S3 server")
    parser.add_argument("--ttfb-fast-ms", type=float, default=80)
    parser.add_argument("--ttfb-slow-ms", type=float, default=400)
    parser.add_argument("--slow-fraction", type=float, default=0.2)
    parser.add_argument("--conn-bandwidth", default="20MB", help="per-connection cap per second (0: none)")
    parser.add_argument("--aggregate-bandwidth", default="400MB", help="cap on all connections per second (0: none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stats-file", help="rewritten with JSON counters every 0.2 s")
    arguments = parser.parse_args(argv)
    upstream_host, upstream_port = _host_port(arguments.upstream)
    settings = LinkSettings(
        upstream_host=upstream_host,
        upstream_port=upstream_port,
        ttfb_fast=arguments.ttfb_fast_ms / 1000,
        ttfb_slow=arguments.ttfb_slow_ms / 1000,
        slow_fraction=arguments.slow_fraction,
        connection_rate=_rate(arguments.conn_bandwidth),
        aggregate_rate=_rate(arguments.aggregate_bandwidth),
        seed=arguments.seed,
    )
    listen_host, listen_port = _host_port(arguments.listen)
    asyncio.run(serve(listen_host, listen_port, settings, arguments.stats_file))


if __name__ == "__main__":
    main()
