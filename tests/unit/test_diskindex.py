"""Pins what `mirror/cache/diskindex.py` relies on of diskcache's internals (its ``_sql`` and its ``Cache``
table), on a real diskcache configured as the content store configures it."""

import os

import diskcache
import pytest

from mirror.cache import diskindex


@pytest.fixture
def index(tmp_path):
    cache = diskcache.Cache(
        str(tmp_path / "content"), eviction_policy="least-recently-used", cull_limit=0, disk_min_file_size=0
    )
    yield cache
    cache.close()


def test_stored_filenames_are_the_files_under_the_index_directory(index, tmp_path):
    index.set("a", b"x" * 10)
    index.set("b", b"y" * 20)
    names = diskindex.stored_filenames(index)
    on_disk = {
        os.path.relpath(os.path.join(folder, name), index.directory)
        for folder, _, files in os.walk(index.directory)
        for name in files
        if name.endswith(".val")
    }
    assert len(names) == 2 and names == on_disk


def test_the_least_recently_used_key_is_the_one_read_longest_ago(index):
    for key in ("a", "b", "c"):
        index.set(key, key.encode())
    assert diskindex.least_recently_used(index) == "a"
    index.get("a")
    index.get("b")
    assert diskindex.least_recently_used(index) == "c"


def test_an_empty_index_has_no_least_recently_used_key(index):
    assert diskindex.least_recently_used(index) is None
