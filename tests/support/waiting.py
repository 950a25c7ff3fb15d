"""Wait for something a test can observe (a metric, a file, a key in the bucket), with a bounded deadline.

This is how a test orders itself after the code under test: never by sleeping a guessed time.
"""

from __future__ import annotations

import time
from typing import Callable


def wait_until(what: str, condition: Callable[[], bool], timeout: float, poll: float = 0.05) -> float:
    """Poll `condition` until it holds; the seconds it took. An AssertionError naming `what` after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
        time.sleep(poll)
    return time.monotonic() - started
