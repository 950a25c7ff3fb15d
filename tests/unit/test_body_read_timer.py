"""`BodyReadTimeout` keeps one timer per request: a body of many small pieces (docker sends 32 KiB chunks) does not
arm and cancel a timer for each piece (that a stalled receive still fails with 408: tests/test_body_timeouts.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from mirror.api.connection import BodyReadTimeout

PIECES = 200


def _scope() -> dict[str, Any]:
    return {"type": "http", "method": "PATCH", "headers": []}


async def _read_body(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass


def test_a_body_of_many_pieces_arms_one_timer_not_one_per_piece():
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        armed = 0
        call_at = loop.call_at

        def counting_call_at(*args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            nonlocal armed
            armed += 1
            return call_at(*args, **kwargs)

        loop.call_at = counting_call_at  # type: ignore[method-assign]
        sent = iter(range(PIECES))

        async def receive() -> dict[str, Any]:
            index = next(sent)
            await asyncio.sleep(0)
            return {"type": "http.request", "body": b"x" * 32768, "more_body": index < PIECES - 1}

        await BodyReadTimeout(_read_body, 30)(_scope(), receive, None)  # type: ignore[arg-type]
        loop.call_at = call_at  # type: ignore[method-assign]
        return armed

    assert asyncio.run(scenario()) <= 2

