"""Edges of one region share their caches: each digest has one owner among the region's live edges, which fills
it from the bucket once; the others read it from the owner and fall back to the bucket when it fails them.

- `discovery`: who the region's edges are (a static list, or DNS re-resolved periodically), minus those that
  just failed us.
- `ownership`: rendezvous hashing of a digest over those edges (pure).
- `auth`: the shared-secret HMAC that signs and checks every peer request.
- `client`: `PeerReader`, a reader wrapped around the bucket reader that fetches blob content from its owner.

The peer endpoint itself is an API route (`mirror/api/peer.py`). A peer is never trusted: every byte it sends
goes through the same fill, verified against the digest before it is committed.
"""

from mirror.peers import auth
from mirror.peers.client import PeerReader, open_peer_reader

__all__ = ["PeerReader", "auth", "open_peer_reader"]
