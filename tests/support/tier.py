"""The fast tier (`make test-fast`, `pytest --fast`): the tests of `FAST_DIRS`, which start no server process.

They run the code in-process (unit tests, and the ASGI app over a filesystem backend in `tests/properties`), so
the tier needs no SeaweedFS, registry:2 or edge process and none of `scripts/install-test-deps.sh`. The tier is
chosen by directory; a test put there that starts a server anyway fails at once with a message saying so, rather
than making the tier slow or dependent on installed daemons.
"""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
FAST_DIRS = (TESTS / "unit", TESTS / "properties")
_ENVIRON = "EDGE_MIRROR_TEST_TIER"  # inherited by anything the tests start, so the refusal holds there too


def enter_fast() -> None:
    os.environ[_ENVIRON] = "fast"


def is_fast() -> bool:
    return os.environ.get(_ENVIRON) == "fast"


def in_fast_tier(path: Path) -> bool:
    """Whether `path` (a test file or directory) belongs to the fast tier, or leads to it."""
    path = path.resolve()
    return any(path == fast or fast in path.parents or path in fast.parents for fast in FAST_DIRS)


def refuse_server(what: str) -> None:
    """Called before a server process starts: refused in the fast tier."""
    if is_fast():
        raise RuntimeError(
            f"{what}: the fast tier (make test-fast) starts no server process; "
            "move this test out of tests/unit and tests/properties, or make it in-process"
        )
