"""Write keys straight into a filesystem backend's root, as registry:2 or another edge would have."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support import layout_keys


def put(root: Path, key: str, data: bytes | str) -> None:
    """Write `data` (a link's digest text, or bytes) at storage key `key` under `root`."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def put_linked_blob(root: Path, name: str, data: bytes) -> str:
    """Write `data` as a blob with its layer link in repository `name` under `root`; returns its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    put(root, layout_keys.blob_data(digest), data)
    put(root, layout_keys.layer_link(name, digest), digest)
    return digest
