"""Region-wide messages: an edge tells every other edge of its region to ``forget`` or ``warm`` something.

``POST /_peer/events`` with a JSON list of ``{"kind": "forget" | "warm", "repository", "digest", "tag"}``, signed
like a peer read (`mirror.peers.auth`) with the body's sha256 in place of the Range header, so only holders of
the region's secret can send one and a captured message cannot be altered. Both kinds are idempotent: a replayed
message (within the signature's `auth.MAX_SKEW`) changes nothing. A message is never forwarded further.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

import aiohttp
import orjson

from mirror import jsondoc, metrics
from mirror.peers import auth
from mirror.peers.client import PeerReader

log = logging.getLogger(__name__)

MESSAGE_PATH = "/_peer/events"
KINDS = ("forget", "warm")
MAX_BODY = 1024 * 1024
# Pauses before sending again to a peer that did not take a message: a restarting edge still learns of a delete
# (its link answers persist on disk across the restart).
RETRY_PAUSES = (0.5, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class Message:
    kind: str
    repository: str
    digest: str | None
    tag: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"kind": self.kind, "repository": self.repository, "digest": self.digest, "tag": self.tag}


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def verify(secret: str, authorization: str | None, body: bytes) -> bool:
    return auth.verify(secret, authorization, "POST", MESSAGE_PATH, _body_hash(body))


def parse(body: bytes) -> list[Message]:
    """The messages of a verified body; ValueError when it is not a list of messages."""
    items = jsondoc.load(body, list, ValueError, "expected a list of messages")
    messages = []
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in KINDS or not isinstance(item.get("repository"), str):
            raise ValueError(f"not a message: {str(item)[:200]}")
        digest, tag = item.get("digest"), item.get("tag")
        messages.append(Message(item["kind"], item["repository"], digest if isinstance(digest, str) else None,
                                tag if isinstance(tag, str) else None))
    return messages


async def broadcast(reader: PeerReader, messages: list[Message], timeout: float) -> int:
    """Send `messages` to every other live edge of the region at once; how many edges took them."""
    body = orjson.dumps([message.as_json() for message in messages])
    peers = [peer for peer in reader.membership.live() if peer != reader.membership.self_address]
    if not peers:
        return 0
    results = await asyncio.gather(*(_send_until_taken(reader.secret, peer, body, timeout) for peer in peers))
    return sum(results)


async def _send_until_taken(secret: str, peer: str, body: bytes, timeout: float) -> bool:
    for pause in RETRY_PAUSES:
        if await _send(secret, peer, body, timeout):
            return True
        await asyncio.sleep(pause)
    return await _send(secret, peer, body, timeout)


async def _send(secret: str, peer: str, body: bytes, timeout: float) -> bool:
    headers = {"Content-Type": "application/json", "Authorization": auth.sign(secret, "POST", MESSAGE_PATH, _body_hash(body))}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(f"http://{peer}{MESSAGE_PATH}", data=body, headers=headers) as response:
                ok = 200 <= response.status < 300
                if not ok:
                    log.warning("peers: %s refused a region message: %d", peer, response.status)
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
        log.warning("peers: cannot tell %s: %r", peer, error)
        ok = False
    metrics.region_messages.labels("sent" if ok else "failed").inc()
    return ok
