"""What the edge loads at start-up is kept out of the cyclic collector's walks (`mirror.compose.open_node`)."""

from __future__ import annotations

import gc

from starlette.testclient import TestClient

from mirror import config
from mirror.api import create_app


def test_objects_loaded_at_start_up_are_frozen_out_of_collections(tmp_path):
    gc.unfreeze()
    environ = {"MIRROR_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(tmp_path / "root"), "MIRROR_CACHE_DIR": str(tmp_path / "cache")}
    try:
        with TestClient(create_app(config.load(None, environ=environ))) as client:
            assert client.get("/v2/").status_code == 200
            assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
