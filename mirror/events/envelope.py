"""registry:2's notification envelope (``application/vnd.docker.distribution.events.v1+json``), both ways.

``{"events": [{"id", "timestamp", "action", "target": {"mediaType", "digest", "size", "repository", "tag",
"url"}, "request", "actor", "source"}]}``. Only what the edge acts on is kept: id, action, repository, digest,
tag and media type. A manifest delete and a blob delete look the same in registry:2 2.8 (a repository and a
digest, no media type); a tag delete carries the tag.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from mirror import jsondoc
from mirror.reference import Digest, parse_digest, parse_name, parse_tag
from mirror.domain import Problem

MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
ACTIONS = ("push", "pull", "mount", "delete")
# What one envelope may hold: registry:2 sends one event per envelope; a replayed batch is still small.
MAX_EVENTS = 1000
MAX_ID_LENGTH = 256


class BadEnvelope(ValueError):
    """The body is not an event envelope; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    action: str
    repository: str
    digest: Digest | None
    tag: str | None
    media_type: str
    size: int = 0


def parse(body: bytes) -> list[Event]:
    """The events of an envelope; BadEnvelope when the body or any event in it is malformed."""
    document = jsondoc.load(body, dict, BadEnvelope, 'expected an envelope {"events": [...]}')
    if not isinstance(document.get("events"), list):
        raise BadEnvelope('expected an envelope {"events": [...]}')
    items = document["events"]
    if len(items) > MAX_EVENTS:
        raise BadEnvelope(f"an envelope holds at most {MAX_EVENTS} events, this one {len(items)}")
    return [_event(index, item) for index, item in enumerate(items)]


def _event(index: int, item: Any) -> Event:
    where = f"events[{index}]"
    if not isinstance(item, dict):
        raise BadEnvelope(f"{where} is not an object")
    event_id, action, target = item.get("id"), item.get("action"), item.get("target")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID_LENGTH:
        raise BadEnvelope(f"{where}.id must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    if action not in ACTIONS:
        raise BadEnvelope(f"{where}.action must be one of {', '.join(ACTIONS)}, not {action!r}")
    if not isinstance(target, dict):
        raise BadEnvelope(f"{where}.target is missing")
    try:
        repository = parse_name(str(target.get("repository", "")))
        digest = parse_digest(str(target["digest"])) if target.get("digest") else None
        tag = parse_tag(str(target["tag"])) if target.get("tag") else None
    except Problem as error:  # here it is the envelope that is bad
        raise BadEnvelope(f"{where}.target: {error}") from None
    if digest is None and tag is None:
        raise BadEnvelope(f"{where}.target needs a digest or a tag")
    size = target.get("size", 0)
    return Event(
        id=event_id, action=action, repository=repository, digest=digest, tag=tag,
        media_type=str(target.get("mediaType", "")), size=size if isinstance(size, int) and size >= 0 else 0,
    )


def build(action: str, repository: str, digest: Digest, media_type: str = "", size: int = 0,
          tag: str | None = None, source: str = "") -> dict[str, Any]:
    """One event as registry:2 writes it, for an edge's own pushes and deletes."""
    target: dict[str, Any] = {"repository": repository, "digest": str(digest)}
    if media_type:
        target.update(mediaType=media_type, size=size, length=size)
    if tag is not None:
        target["tag"] = tag
    return {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "action": action,
        "target": target,
        "request": {},
        "actor": {},
        "source": {"addr": source, "instanceID": ""},
    }


def envelope(events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"events": events})
