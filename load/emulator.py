"""A Storj-like link between an S3 client and a real S3 server, as seen from a far region.

    python -m load.emulator --listen 127.0.0.1:9000 --upstream 127.0.0.1:8333 \
        [--ttfb-fast-ms 80 --ttfb-slow-ms 400 --slow-fraction 0.2] \
        [--conn-bandwidth 20MB --aggregate-bandwidth 400MB] [--seed 1] [--control 127.0.0.1:9001]

A TCP proxy that passes every byte unchanged, so SigV4 signatures stay valid and Range works. It shapes:

- time to first byte: each *response* is held back for a delay drawn from a bimodal distribution (80 ms, or
  400 ms one time in five by default). A response is "the first upstream bytes after the client sent
  something": exact for HTTP/1.1 clients that do not pipeline, which no S3 SDK does.
- per-connection bandwidth (default 20 MB/s, about one stream through Storj's hosted gateway) and an aggregate
  cap over all connections (default 400 MB/s), each direction separately (links are full duplex).

It is written on asyncio *protocols* rather than streams: bytes go from ``recv`` straight to ``send`` with no
intermediate buffer copies and no coroutine per chunk, which keeps its own CPU low (its ceiling on the bench
machine is in ``load/README.md``). Pacing is "send, then pay": after forwarding a chunk the source side stops
reading until both token buckets have paid for it, so memory stays at one socket buffer per connection.

``--control HOST:PORT`` serves ``GET /stats`` (JSON counters) for the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import time
from dataclasses import asdict, dataclass, field

MB = 1000 * 1000
READ_SIZE = 256 * 1024  # asyncio's selector transports read at most this much per recv
HIGH_WATER = 1024 * 1024  # pause the source while this much is queued towards a slow reader
MIN_SLEEP = 0.001  # debts smaller than this are carried, not slept on


class Pacer:
    """A token bucket: `debt(n)` takes `n` bytes' worth of tokens and says how long until the bucket is back
    in credit. The bucket holds `burst` seconds of tokens, so a timer that fires a little late is made up for
    on the next chunk instead of being lost (without it the link runs ~15 % under its cap)."""

    def __init__(self, bytes_per_second: float, burst: float = 0.05) -> None:
        self.rate = bytes_per_second
        self.burst = burst
        self._free_at = 0.0

    def debt(self, size: int, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        self._free_at = max(now - self.burst, self._free_at) + size / self.rate
        return self._free_at - now


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
    open_connections: int = 0
    responses: int = 0
    bytes_down: int = 0  # upstream → client: the backend egress
    bytes_up: int = 0  # client → upstream
    ttfb_seconds_total: float = 0.0
    slow_responses: int = 0
    started: float = field(default_factory=time.time)


class Link:
    """Shared state of one emulated link: settings, counters, the aggregate buckets and the TTFB dice."""

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self.stats = LinkStats()
        self.aggregate_down = Pacer(settings.aggregate_rate)
        self.aggregate_up = Pacer(settings.aggregate_rate)
        self._dice = random.Random(settings.seed)

    def draw_ttfb(self) -> float:
        slow = self._dice.random() < self.settings.slow_fraction
        self.stats.responses += 1
        self.stats.slow_responses += slow
        delay = self.settings.ttfb_slow if slow else self.settings.ttfb_fast
        self.stats.ttfb_seconds_total += delay
        return delay


class Side(asyncio.Protocol):
    """One socket of a proxied connection. Data it receives is paced and written to its `peer`'s socket."""

    def __init__(self, link: Link, downstream: bool) -> None:
        self.link = link
        self.downstream = downstream  # True for the upstream socket: its data flows down to the client
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.pacer = Pacer(link.settings.connection_rate)
        self.aggregate = link.aggregate_down if downstream else link.aggregate_up
        self.awaiting_response = False  # (upstream side) the client sent a request since our last response
        self._held: list[bytes] = []  # data received but not yet forwarded (only while a TTFB delay runs)
        self._pauses: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.eof = False

    # -- flow control ------------------------------------------------------------------------------------

    def pause(self, reason: str) -> None:
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._pauses.add(reason)

    def resume(self, reason: str) -> None:
        self._pauses.discard(reason)
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def pause_writing(self) -> None:  # our socket's send buffer is full: stop reading from the peer
        if self.peer is not None:
            self.peer.pause("backpressure")

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume("backpressure")

    # -- data ----------------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self._held.append(data)  # the upstream connection is still being opened
            return
        if not self.downstream:
            peer.awaiting_response = True
        elif self.awaiting_response:
            self.awaiting_response = False
            self._held.append(data)
            self.pause("ttfb")
            self._timer = asyncio.get_running_loop().call_later(self.link.draw_ttfb(), self._release)
            return
        if self._held:
            self._held.append(data)  # still inside a TTFB delay: keep order
            return
        self._forward(data)

    def _release(self) -> None:
        self._timer = None
        held, self._held = self._held, []
        for data in held:
            self._forward(data)
        self.resume("ttfb")
        if self.eof:
            self._pass_eof()

    def flush_held(self) -> None:
        """Forward what arrived before the peer existed (client bytes sent while we were connecting)."""
        if self._held and not self.downstream:
            held, self._held = self._held, []
            for data in held:
                self.data_received(data)

    def _forward(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return
        size = len(data)
        if self.downstream:
            self.link.stats.bytes_down += size
        else:
            self.link.stats.bytes_up += size
        peer.transport.write(data)
        now = time.monotonic()
        wait = max(self.pacer.debt(size, now), self.aggregate.debt(size, now))
        if wait > MIN_SLEEP and "pace" not in self._pauses:
            self.pause("pace")
            asyncio.get_running_loop().call_later(wait, self.resume, "pace")

    # -- lifecycle -----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)

    def eof_received(self) -> bool:
        """Half-close towards the peer (after any held bytes); once both sides are done, close both."""
        self.eof = True
        if not self._held:
            self._pass_eof()
        return True  # keep our socket open: the peer may still answer through it

    def _pass_eof(self) -> None:
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            if self.transport is not None:
                self.transport.close()
            return
        if peer.eof and not peer._held:
            peer.transport.close()
            if self.transport is not None:
                self.transport.close()
        elif peer.transport.can_write_eof():
            peer.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._release_on_close()
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            peer.transport.close()  # close() still flushes what is queued

    def _release_on_close(self) -> None:
        held, self._held = self._held, []
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            for data in held:
                peer.transport.write(data)


class ClientSide(Side):
    """The socket accepted from the S3 client; it opens the upstream connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.link.stats.connections += 1
        self.link.stats.open_connections += 1
        self.pause("connecting")
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.link.settings
        try:
            _, upstream = await loop.create_connection(
                lambda: Side(self.link, downstream=True), settings.upstream_host, settings.upstream_port
            )
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        assert isinstance(upstream, Side)
        upstream.peer = self
        self.peer = upstream
        if self.closed:
            upstream.transport.close()  # type: ignore[union-attr]
            return
        self.flush_held()
        self.resume("connecting")

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.stats.open_connections -= 1
        super().connection_lost(exc)


async def _control(link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A one-route HTTP server: ``GET /stats`` answers the counters as JSON."""
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        body = json.dumps({**asdict(link.stats), "settings": asdict(link.settings)}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(listen: tuple[str, int], settings: LinkSettings, control: tuple[str, int] | None) -> None:
    link = Link(settings)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientSide(link, downstream=False), *listen, backlog=1024)
    control_server = None
    if control is not None:
        control_server = await asyncio.start_server(lambda r, w: _control(link, r, w), *control)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"emulator listening on {listen[0]}:{listen[1]} → {settings.upstream_host}:{settings.upstream_port}", flush=True)
    await stop.wait()
    server.close()
    if control_server is not None:
        control_server.close()


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def parse_rate(text: str) -> float:
    """Bytes per second from ``20MB`` / ``400MB/s`` / ``1GB`` / ``0`` (no cap). Decimal units, as links are sold."""
    text = text.strip().upper().removesuffix("/S")
    for suffix, scale in (("GB", 1000**3), ("MB", MB), ("KB", 1000), ("B", 1)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m load.emulator", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--listen", required=True, help="host:port to accept S3 clients on")
    parser.add_argument("--upstream", required=True, help="host:port of the real S3 server")
    parser.add_argument("--ttfb-fast-ms", type=float, default=80)
    parser.add_argument("--ttfb-slow-ms", type=float, default=400)
    parser.add_argument("--slow-fraction", type=float, default=0.2)
    parser.add_argument("--conn-bandwidth", default="20MB", help="per-connection cap per second and direction (0: none)")
    parser.add_argument("--aggregate-bandwidth", default="400MB", help="cap over all connections (0: none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--control", help="host:port serving GET /stats")
    arguments = parser.parse_args(argv)
    upstream_host, upstream_port = host_port(arguments.upstream)
    settings = LinkSettings(
        upstream_host=upstream_host,
        upstream_port=upstream_port,
        ttfb_fast=arguments.ttfb_fast_ms / 1000,
        ttfb_slow=arguments.ttfb_slow_ms / 1000,
        slow_fraction=arguments.slow_fraction,
        connection_rate=parse_rate(arguments.conn_bandwidth),
        aggregate_rate=parse_rate(arguments.aggregate_bandwidth),
        seed=arguments.seed,
    )
    control = host_port(arguments.control) if arguments.control else None
    asyncio.run(serve(host_port(arguments.listen), settings, control))


if __name__ == "__main__":
    main()
