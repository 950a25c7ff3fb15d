"""The ``sendfile`` loop of zero-copy responses (`mirror.sendfile`), run on the event loop.

`send_range` is leaner than ``loop.sendfile``, which per segment unregisters the transport and pauses its reading,
and per ``os.sendfile`` call registers and unregisters a writer (two ``epoll_ctl`` and a weak-dictionary lookup
that fails). It keeps one writer callback, on its own duplicate of the socket's descriptor, for the whole range
and calls ``os.sendfile`` each time the socket can take more (about its send buffer, up to ~4 MiB here).
"""

from __future__ import annotations

import asyncio
import os
from typing import BinaryIO


class _Range:
    """`count` bytes of a file from `offset` out to a socket, one ``os.sendfile`` each time it is writable.

    `sock` is this range's own duplicate of the connection's socket descriptor, so that its writer callback is
    its own (the public ``add_writer`` refuses a transport's descriptor) and cannot outlive it: the caller
    removes the callback and closes the duplicate when the range is finished. Finished (`done` holds the bytes
    sent) when the range is out, when a call fails (the client gone) or returns 0 (the file is shorter than the
    range), or when the connection is closing or lost.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport, sock: int, file: int,
                 offset: int, count: int) -> None:
        self.loop, self.transport, self.sock, self.file = loop, transport, sock, file
        self.offset, self.left, self.sent = offset, count, 0
        self.done: asyncio.Future[int] = loop.create_future()
        self.watching = False

    def step(self) -> None:
        if self.done.done():
            return
        if self.transport.is_closing():
            self.finish()
            return
        try:
            sent = os.sendfile(self.sock, self.file, self.offset, self.left)
        except (BlockingIOError, InterruptedError):
            sent = -1
        except OSError:
            self.finish()
            return
        if sent == 0:
            self.finish()
            return
        if sent > 0:
            self.offset += sent
            self.sent += sent
            self.left -= sent
            if not self.left:
                self.finish()
                return
        if not self.watching:  # the socket's buffer is full: go on when it drains
            self.watching = True
            self.loop.add_writer(self.sock, self.step)

    def on_lost(self, _: "asyncio.Future[None]") -> None:
        self.finish()

    def finish(self) -> None:
        if self.watching:
            self.watching = False
            self.loop.remove_writer(self.sock)
        if not self.done.done():
            self.done.set_result(self.sent)


async def send_range(loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter, file: BinaryIO, offset: int,
                     count: int, lost: "asyncio.Future[None]") -> int:
    """Send `count` bytes of `file` from `offset` on `writer`'s connection (its write buffer already drained, and
    nothing else written meanwhile); return how many went out (fewer: the client has gone, or the file is short).
    `lost` completes when the connection is lost (`until_lost`). Without a socket (not a TCP transport), this is
    ``loop.sendfile``.
    """
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is None:
        return await loop.sendfile(transport, file, offset, count)
    if lost.done() or transport.is_closing():
        return 0
    own = os.dup(sock.fileno())  # closed below, before this returns: the connection never outlives its transport
    out = _Range(loop, transport, own, file.fileno(), offset, count)
    lost.add_done_callback(out.on_lost)
    try:
        out.step()
        return await out.done
    finally:
        lost.remove_done_callback(out.on_lost)
        out.finish()
        os.close(own)


async def until_lost(writer: asyncio.StreamWriter) -> None:
    """Return once `writer`'s connection is lost, however it ended."""
    try:
        await writer.wait_closed()
    except Exception:  # the error it was lost with: the connection's own code reports that
        pass
