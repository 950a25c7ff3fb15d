"""The event receiver's rules, in memory: what an event asks of the region, dedup by id, bounded queues."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from mirror.events import envelope, receiver
from mirror.events.envelope import BadEnvelope, Event
from mirror.mediatypes import OCI_INDEX, OCI_MANIFEST
from mirror.reference import Digest

DIGEST = Digest("sha256", "a" * 64)


def event(event_id: str, action: str = "push", media_type: str = OCI_MANIFEST, tag: str | None = "v1") -> Event:
    return Event(event_id, action, "team/app", DIGEST, tag, media_type)


def test_pulls_blob_pushes_and_untagged_manifests_ask_nothing_of_the_region():
    assert receiver.message_for(event("1", "pull"), False) is None
    assert receiver.message_for(event("2", media_type="application/octet-stream", tag=None), False) is None
    assert receiver.message_for(event("3", tag=None), True) is None
    assert receiver.message_for(event("4", "mount"), False) is None


def test_a_tagged_manifest_push_warms_and_an_index_by_digest_warms_only_with_platforms_configured():
    assert receiver.message_for(event("1"), False).kind == "warm"
    assert receiver.message_for(event("2", media_type=OCI_INDEX, tag=None), False) is None
    assert receiver.message_for(event("3", media_type=OCI_INDEX, tag=None), True).kind == "warm"


def test_a_delete_of_a_digest_or_a_tag_forgets():
    assert receiver.message_for(event("1", "delete", media_type="", tag=None), False).kind == "forget"
    tag_delete = Event("2", "delete", "team/app", None, "v1", "")
    assert receiver.message_for(tag_delete, False).tag == "v1"


def _run(body):
    return asyncio.run(body())


def test_an_event_seen_before_is_not_queued_again():
    async def body() -> None:
        handled = []

        async def handle(message, broadcast) -> None:
            handled.append(message)

        queue = receiver.Receiver(handle, 10, False)
        assert queue.offer([event("same")]) == "queued"
        assert queue.offer([event("same"), event("same")]) == "queued"
        assert sum(q.qsize() for q in queue._queues.values()) == 1

    _run(body)


def test_a_full_queue_refuses_the_whole_envelope_and_remembers_none_of_its_ids():
    async def body() -> None:
        async def handle(message, broadcast) -> None:
            raise AssertionError("no worker runs in this test")

        queue = receiver.Receiver(handle, 2, False)
        assert queue.offer([event("a"), event("b")]) == "queued"
        assert queue.offer([event("c")]) == "busy"
        assert "c" not in queue._seen  # refused: registry:2 sends it again, and then it is new
        assert queue._queues["warm"].qsize() == 2

    _run(body)


def test_the_ids_remembered_are_bounded_whatever_a_flood_sends():
    async def body() -> None:
        async def handle(message, broadcast) -> None:
            pass

        queue = receiver.Receiver(handle, 10, False)
        for index in range(receiver.SEEN_IDS * 2):
            queue.offer([event(f"pull-{index}", "pull")])
        assert len(queue._seen) == receiver.SEEN_IDS

    _run(body)


@pytest.mark.parametrize("body, says", [
    (b"not json", "not JSON"),
    (b"[]", "envelope"),
    (b'{"events": [{"id": "1", "action": "teleport", "target": {}}]}', "action"),
    (b'{"events": [{"id": "1", "action": "push", "target": {"repository": "Bad Name", "digest": "sha256:x"}}]}', "target"),
    (b'{"events": [{"id": "1", "action": "push", "target": {"repository": "team/app"}}]}', "digest or a tag"),
])
def test_a_malformed_envelope_is_refused_with_what_is_wrong(body, says):
    with pytest.raises(BadEnvelope, match=says):
        envelope.parse(body)


def test_an_envelope_the_edge_builds_parses_back_to_the_same_event():
    built = envelope.build("push", "team/app", DIGEST, OCI_MANIFEST, 123, tag="v1")
    (parsed,) = envelope.parse(envelope.envelope([built]))
    assert (parsed.action, parsed.repository, parsed.digest, parsed.tag, parsed.size) == ("push", "team/app", DIGEST, "v1", 123)
    assert orjson.loads(envelope.envelope([built]))["events"][0]["target"]["mediaType"] == OCI_MANIFEST


def test_an_envelope_that_can_never_fit_the_queue_is_told_so_not_to_retry():
    async def body() -> None:
        async def handle(message, broadcast) -> None:
            pass

        queue = receiver.Receiver(handle, 2, False)
        assert queue.offer([event("a"), event("b"), event("c")]) == "too_many"
        assert queue.offer([event("a"), event("b")]) == "queued"

    _run(body)
