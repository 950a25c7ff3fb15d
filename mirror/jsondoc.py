"""Decoding a JSON body of an expected shape (a manifest, a peer's messages, an event envelope): one place that
turns undecodable or ill-shaped bytes into the caller's own error."""

from __future__ import annotations

from typing import Any, Callable

import orjson


def load(body: bytes, shape: type, fail: Callable[[str], Exception], expected: str) -> Any:
    """`body` decoded, if it is JSON and of type `shape`; else `fail` (the caller's exception) with why."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise fail(f"not JSON: {error}") from None
    if not isinstance(document, shape):
        raise fail(expected)
    return document
