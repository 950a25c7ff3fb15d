"""The aiobotocore adapter: an S3 object's body as the pieces aiohttp read from the socket.

aiobotocore's public ways to read a body (``read(n)``, ``iter_chunks(n)``) join buffered pieces into new bytes
objects (about 10 % more CPU per GiB read here); aiohttp's ``StreamReader.readchunk`` hands each piece over as
it is. Reaching it relies on one internal of aiobotocore, kept here and nowhere else: its ``StreamingBody`` is a
wrapt proxy (``__wrapped__``) of the ``aiohttp.ClientResponse``. ``tests/unit/test_s3body.py`` pins that; if a
release changes it, the first read fails with a TypeError that names this module.
"""

from __future__ import annotations

from typing import Any, AsyncGenerator

import aiohttp


def raw_content(body: Any) -> aiohttp.StreamReader:
    """The aiohttp StreamReader under aiobotocore's StreamingBody `body`."""
    response = getattr(body, "__wrapped__", None)
    if not isinstance(response, aiohttp.ClientResponse):
        raise TypeError(
            f"aiobotocore's {type(body).__name__} no longer wraps an aiohttp.ClientResponse "
            f"({type(response).__name__}): mirror/upstream/s3body.py must follow it"
        )
    return response.content


async def pieces(body: Any) -> AsyncGenerator[bytes, None]:
    """The body's bytes, one piece per socket read as aiohttp buffered it (up to 256 KiB), to its end."""
    content = raw_content(body)
    while True:
        chunk, chunk_end = await content.readchunk()
        if not chunk:
            if chunk_end:  # an empty piece at a chunked-encoding boundary, not the end
                continue
            return
        yield chunk
