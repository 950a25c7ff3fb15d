"""The bare_parallel ceiling's range split (load/bare.py): every byte once, at most `streams` GETs."""

import pytest

from load.bare import ranges


@pytest.mark.parametrize("size, streams", [(256 * 2**20, 24), (48 * 2**20 + 7, 24), (5, 8), (1, 1)])
def test_ranges_cover_the_object_once(size, streams):
    cut = ranges(size, streams)
    assert len(cut) <= streams
    assert cut[0][0] == 0 and cut[-1][1] == size
    assert all(end == next_start for (_, end), (next_start, _) in zip(cut, cut[1:]))
