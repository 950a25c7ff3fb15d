"""A clock the test moves: passed as the ``clock`` of a cache or verifier instead of waiting out a TTL."""

from __future__ import annotations

import time


class FakeClock:
    """Callable like ``time.time``/``time.monotonic``; starts at the real wall time (so it can stand in for
    either, and tokens minted now are valid on it) and moves only when the test calls `advance`."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
