"""The floor's ``stack`` step: what it costs to take a request body in through the edge's own HTTP server, before
any code of the edge's runs on it (issue 23, goal 3: a push's floor is above the kernel's).

A push's body reaches the edge through hypercorn (its read loop and flow control), h11 (the chunked framing) and
starlette (``request.stream()``), set up exactly as the edge sets them up (`mirror.server.serve`, with its
`EdgeConnection`, the upload's read window asked for as the edge's upload handlers ask). This step serves an app
that only drops the bytes, and a child process PATCHes it `size` bytes as docker pushes a layer: one request,
``Transfer-Encoding: chunked``, a chunk per 1 MiB piece of the floor's pattern (``http.client``, the child's CPU
is not counted). The figure is this process's CPU (`time.process_time`, every thread) from the body's
first piece to its last: the kernel's receive and everything the stack adds to it. Beside the floor's ``recv``
(the same bytes by a bare ``recv_into``) it says what the stack itself costs per GiB.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing
import time
from typing import Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from load.procs import free_port

CONNECT_SECONDS = 30.0


def _body(piece: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, size, len(piece)):
        yield piece[: min(len(piece), size - offset)]


def _push(port: int, piece: bytes, size: int, rounds: int) -> None:
    """The child that stands for a pushing client: `rounds` chunked PATCHes of `size` bytes, one connection each,
    a chunk per `piece`.
    Its allocator is set as the edge's: a sender slowed by page faults hands the server smaller reads, and each
    read costs the server a round of its loop, so its CPU per byte would rise with the sender's."""
    from mirror import allocator

    allocator.tune()
    deadline = time.monotonic() + CONNECT_SECONDS
    for _ in range(rounds):
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_SECONDS)
            try:
                connection.request("PATCH", "/sink", body=_body(piece, size), encode_chunked=True)
                break
            except ConnectionRefusedError:  # the server is not listening yet
                connection.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        answer = connection.getresponse()
        if answer.status != 202 or int(answer.read()) != size:
            raise RuntimeError(f"the stack floor's server answered {answer.status}")
        connection.close()


def measure(piece: bytes, size: int, rounds: int) -> list[float]:
    """CPU seconds per GiB this process spent on each of `rounds` request bodies of `size` bytes, sent as chunks of
    `piece` (the floor's own pattern, `load.floor`)."""
    from mirror.admission import WIDE_READS
    from mirror.config import load as load_config  # the edge's own server, as `mirror.cli` sets it up
    from mirror.server import serve

    port = free_port()
    spent: list[float] = []
    all_drained = asyncio.Event()

    async def sink(request: Request) -> PlainTextResponse:
        request.scope["extensions"][WIDE_READS]["widen"]()  # as the edge's upload handlers do (mirror/api/uploads.py)
        started, received = 0.0, 0
        async for piece in request.stream():
            if not received:
                started = time.process_time()
            received += len(piece)
        spent.append((time.process_time() - started) / size * 2**30)
        if len(spent) == rounds:
            all_drained.set()
        return PlainTextResponse(str(received), status_code=202)

    app = Starlette(routes=[Route("/sink", sink, methods=["PATCH"])])
    settings = load_config(None, environ={"MIRROR_HTTP_ADDR": f"127.0.0.1:{port}"}).http
    client = multiprocessing.get_context("fork").Process(target=_push, args=(port, piece, size, rounds), daemon=True)
    client.start()
    try:
        asyncio.run(serve(app, app, settings, all_drained.wait))
    finally:
        client.join(CONNECT_SECONDS)
    if client.exitcode != 0 or len(spent) != rounds:
        raise RuntimeError(f"the stack floor's client failed (exit {client.exitcode}, {len(spent)} of {rounds} bodies)")
    return spent
