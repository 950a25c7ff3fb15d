"""Pins what `mirror/upstream/s3body.py` relies on of aiobotocore: its StreamingBody (what ``get_object``
returns as ``Body``) wraps the aiohttp response, whose StreamReader hands out the received pieces. A real
aiohttp server and a real aiobotocore StreamingBody, in process."""

import asyncio
import os

import aiohttp
import pytest
from aiobotocore.response import StreamingBody
from aiohttp import web

from mirror.upstream import s3body
from tests.support.ports import free_port

PIECES = [os.urandom(size) for size in (1, 70_000, 3, 300_000)]


async def _read_through_streaming_body() -> list[bytes]:
    async def handler(request):
        response = web.StreamResponse()  # chunked: empty pieces at chunk boundaries must not end the body
        await response.prepare(request)
        for piece in PIECES:
            await response.write(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/object", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"http://127.0.0.1:{port}/object")
            body = StreamingBody(response, str(sum(map(len, PIECES))))
            try:
                return [piece async for piece in s3body.pieces(body)]
            finally:
                body.close()
    finally:
        await runner.cleanup()


def test_pieces_of_aiobotocores_body_are_the_whole_body_in_order():
    received = asyncio.run(_read_through_streaming_body())
    assert all(received) and b"".join(received) == b"".join(PIECES)


def test_a_body_that_wraps_no_aiohttp_response_fails_naming_the_adapter():
    with pytest.raises(TypeError, match="mirror/upstream/s3body.py"):
        s3body.raw_content(object())
