"""Region membership: static lists, DNS re-resolution (with the real resolver, and with a changing answer), and
edges that failed us left out for a while."""

from __future__ import annotations

import asyncio

from mirror.config import PeersConfig
from mirror.peers.discovery import Membership, resolve

SELF = "127.0.0.1:7000"


def test_a_static_list_always_includes_this_edge():
    membership = Membership(PeersConfig(addresses=("127.0.0.2:7000",), secret="x" * 16, self_address=SELF))
    assert membership.live() == ("127.0.0.1:7000", "127.0.0.2:7000")


def test_localhost_resolves_through_the_event_loop():
    assert "127.0.0.1:7001" in asyncio.run(resolve("localhost", 7001))


def test_dns_answers_are_re_resolved_and_a_failed_lookup_keeps_the_last():
    answers: list[list[str] | OSError] = [["10.0.0.2:5000"], ["10.0.0.2:5000", "10.0.0.3:5000"], OSError("SERVFAIL")]

    async def resolver(name: str, port: int) -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    async def scenario() -> list[tuple[str, ...]]:
        membership = Membership(PeersConfig(dns="edges", secret="x" * 16, self_address=SELF, refresh=1), resolver)
        seen = []
        for _ in range(3):
            await membership.refresh()
            seen.append(membership.live())
        return seen

    first, second, third = asyncio.run(scenario())
    assert first == ("10.0.0.2:5000", SELF)
    assert second == ("10.0.0.2:5000", "10.0.0.3:5000", SELF)
    assert third == second


def test_a_peer_marked_down_is_left_out_but_this_edge_never_is():
    membership = Membership(PeersConfig(addresses=(SELF, "127.0.0.2:7000"), secret="x" * 16, self_address=SELF, refresh=30))
    membership.mark_down("127.0.0.2:7000")
    membership.mark_down(SELF)
    assert membership.live() == (SELF,)
