"""Rendezvous ownership: every edge agrees, and membership changes move only the digests they must."""

from __future__ import annotations

import hashlib
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mirror.peers.ownership import owner

peers_strategy = st.lists(
    st.builds(lambda host, port: f"10.0.{host}.1:{port}", st.integers(0, 255), st.integers(1, 65535)),
    min_size=1, max_size=12, unique=True,
)
digests_strategy = st.lists(st.binary(min_size=1, max_size=16).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest()),
                            min_size=1, max_size=40)


@given(peers_strategy, digests_strategy, st.randoms())
def test_every_edge_agrees_whatever_order_it_lists_the_region_in(peers, digests, random):
    shuffled = list(peers)
    random.shuffle(shuffled)
    for digest in digests:
        assert owner(digest, peers) == owner(digest, shuffled)
        assert owner(digest, peers) in peers


@given(peers_strategy.filter(lambda peers: len(peers) >= 2), digests_strategy, st.data())
def test_an_edge_leaving_moves_only_the_digests_it_owned(peers, digests, data):
    leaving = data.draw(st.sampled_from(peers))
    remaining = [peer for peer in peers if peer != leaving]
    for digest in digests:
        before = owner(digest, peers)
        if before != leaving:
            assert owner(digest, remaining) == before


@given(peers_strategy, digests_strategy)
def test_an_edge_joining_takes_digests_only_for_itself(peers, digests):
    joining = "192.168.7.7:5000"
    for digest in digests:
        after = owner(digest, [*peers, joining])
        assert after in (owner(digest, peers), joining)


def test_ownership_spreads_evenly_over_the_region():
    peers = [f"127.0.0.1:{5000 + index}" for index in range(4)]
    counts = Counter(owner("sha256:" + hashlib.sha256(str(index).encode()).hexdigest(), peers) for index in range(4000))
    assert set(counts) == set(peers)
    assert all(800 <= count <= 1200 for count in counts.values()), counts


def test_nobody_owns_anything_in_an_empty_region():
    assert owner("sha256:" + "0" * 64, []) is None
