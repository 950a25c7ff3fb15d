"""Write keys straight into a filesystem backend's root, as registry:2 or another edge would have."""

from __future__ import annotations

from pathlib import Path


def put(root: Path, key: str, data: bytes | str) -> None:
    """Write `data` (a link's digest text, or bytes) at storage key `key` under `root`."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
