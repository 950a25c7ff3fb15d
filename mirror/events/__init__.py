"""registry:2 notification events, both ends of the contract.

- `envelope`: parse and build ``application/vnd.docker.distribution.events.v1+json`` envelopes.
- `receiver`: dedupe by id, sort into forget (deletes) and warm (manifest pushes), bounded queues.
- `warm`: warm a pushed image here (tag, manifests, links; the blobs this edge owns in the region).
- `region`: what an event does here and, over the signed peer channel, on every other edge of the region.
- `sender`: an edge's own pushes and deletes as envelopes to ``[[notifications.endpoints]]``.

The HTTP routes are in `mirror/api/events.py`.
"""
