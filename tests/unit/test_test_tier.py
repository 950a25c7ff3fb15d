"""The fast tier (`make test-fast`) is chosen by directory and refuses to start server processes."""

from __future__ import annotations

import pytest

from tests.support import tier
from tests.support.edge import EdgeMirror, filesystem_storage
from tests.support.processes import Server


def test_only_unit_and_property_tests_are_in_the_fast_tier():
    assert tier.in_fast_tier(tier.TESTS / "unit" / "test_layout.py")
    assert tier.in_fast_tier(tier.TESTS / "properties")
    assert tier.in_fast_tier(tier.TESTS)  # collection walks down through it
    assert not tier.in_fast_tier(tier.TESTS / "test_push.py")
    assert not tier.in_fast_tier(tier.TESTS / "e2e" / "test_containerd.py")


def test_a_server_process_is_refused_in_the_fast_tier(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_MIRROR_TEST_TIER", "fast")
    with pytest.raises(RuntimeError, match="fast tier"):
        Server(["sleep", "30"], tmp_path / "server.log")
    with pytest.raises(RuntimeError, match="fast tier"):
        EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data")).start()
