"""``POST /admin/notifications``: registry:2 notification envelopes (its ``notifications.endpoints`` url), and
``POST /_peer/events``: the region's forget/warm messages between edges.

The first needs ``[admin]`` (the admin token as a bearer header, as the central registry's endpoint ``headers``
carry it); the second exists only with ``[peers]`` and is signed with the region's secret. An envelope is
answered as soon as its events are queued (202); a full queue answers 503 with Retry-After, so registry:2's own
retry with backoff does the buffering and no event is dropped.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mirror import errors
from mirror.api.admin import require_token
from mirror.events import envelope
from mirror.events.region import RegionEvents
from mirror.peers import PeerReader
from mirror.peers import messages as peer_messages

MAX_BODY = 1024 * 1024
RETRY_AFTER_SECONDS = 2
ACCEPTED_TYPES = (envelope.MEDIA_TYPE, "application/json")


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.RegistryError(errors.ENVELOPE_TOO_LARGE, f"the body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise errors.RegistryError(errors.ENVELOPE_TOO_LARGE, f"the body is larger than {limit} bytes")
    return bytes(body)


async def notifications(request: Request) -> Response:
    require_token(request)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in ACCEPTED_TYPES:
        raise errors.RegistryError(
            errors.ENVELOPE_MEDIA_TYPE, f"send {envelope.MEDIA_TYPE} (or application/json), not {media_type or 'no Content-Type'!r}"
        )
    body = await _body(request, MAX_BODY)
    try:
        events = envelope.parse(body)
    except envelope.BadEnvelope as error:
        raise errors.RegistryError(errors.ENVELOPE_INVALID, f"not an event envelope: {error}") from None
    region: RegionEvents = request.app.state.region_events
    result = region.receiver.offer(events)
    if result == "too_many":
        raise errors.RegistryError(
            errors.ENVELOPE_TOO_LARGE, "the envelope holds more events than this edge queues (events.queue_size); send fewer at once"
        )
    if result == "busy":
        raise errors.RegistryError(
            errors.EVENTS_BUSY, "the event queue is full; retry later", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    return Response(status_code=202, headers={"Content-Length": "0"})


async def peer_events(request: Request) -> Response:
    reader: PeerReader = request.app.state.peer_reader
    body = await _body(request, peer_messages.MAX_BODY)
    if not peer_messages.verify(reader.secret, request.headers.get("authorization"), body):
        raise errors.RegistryError(errors.UNAUTHORIZED, "peer requests must be signed with the region's peers.secret")
    try:
        messages = peer_messages.parse(body)
    except ValueError as error:
        raise errors.RegistryError(errors.ENVELOPE_INVALID, f"not a region message: {error}") from None
    region: RegionEvents = request.app.state.region_events
    for message in messages:
        region.from_peer(message)
    return Response(status_code=204)


ADMIN_ROUTES = [Route("/admin/notifications", notifications, methods=["POST"])]
PEER_ROUTES = [Route(peer_messages.MESSAGE_PATH, peer_events, methods=["POST"])]
