"""Which client connections the edge serves, and how far: the connection limits of ``[http]``.

An edge is reached by every pod of its node (and the node itself: containerd, the kubelet's probes). One of
them must not be able to take the edge away from the others, so a new connection is admitted by three rules:

- ``http.max_connections`` open at once in all (one global cap: memory and descriptors stay bounded);
- ``http.max_connections_per_client`` open at once from one client address, and never more than half of
  ``max_connections`` (one pod cannot hold them all, however small the cap);
- a small reserve above both (`PROBE_RESERVE` in all, `PROBE_RESERVE_PER_CLIENT` per address) for
  connections that arrive when their address or the edge is full. Only the path tells a probe from a pull,
  and the path comes with the request head, so such a connection is admitted *limited*: it may ask for
  ``/healthz``, ``/readyz`` or ``/metrics`` once; anything else is refused with 503 (edge full) or 429 (its
  address full) and the connection closed. The kubelet's probes keep answering while pulls are refused, so a
  busy edge is not restarted. Past the reserve, a connection is closed at once.

A head that does not arrive within ``http.header_timeout`` ends its connection (`mirror.server`), so a limited
slot is held for at most that long.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

PROBE_RESERVE = 16  # limited connections (probes while full) open at once, beyond max_connections
PROBE_RESERVE_PER_CLIENT = 4  # of those, from one address: the kubelet's liveness, readiness and startup probes

# Why a connection was limited or refused: the `reason` label of mirror_rejected_connections_total.
FULL = "max_connections"
CLIENT_FULL = "max_connections_per_client"
HEADER_TIMEOUT = "header_timeout"
REASONS = (FULL, CLIENT_FULL, HEADER_TIMEOUT)

# The ASGI scope extension that marks a request of a limited connection: {"reason": FULL or CLIENT_FULL}.
LIMITED = "mirror.limited"

# The ASGI scope extension through which the app asks for its connection's wide read window while it reads an
# upload's body: {"widen": a callable taking nothing, `mirror.server.EdgeConnection.widen_reads`}. Absent where the
# server does not offer it.
WIDE_READS = "mirror.wide_reads"


@dataclass(frozen=True)
class Admitted:
    """A connection let in: `limited` is None for full service, else why it may only ask for a probe path."""

    client: str
    limited: str | None


class Admission:
    """Counts open connections, in all and per client address, and admits or refuses new ones."""

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max(1, min(max_per_client, max_connections // 2))
        self.open = 0
        self.limited_open = 0
        self._by_client: Counter[str] = Counter()
        self._limited_by_client: Counter[str] = Counter()

    def admit(self, client: str) -> Admitted | str:
        """An `Admitted` for `client`'s new connection, or the reason it is refused outright."""
        if self._by_client[client] >= self.max_per_client:
            reason: str | None = CLIENT_FULL
        elif self.open - self.limited_open >= self.max_connections:
            reason = FULL
        else:
            reason = None
        if reason is not None:
            if self.limited_open >= PROBE_RESERVE or self._limited_by_client[client] >= PROBE_RESERVE_PER_CLIENT:
                return reason
            self.limited_open += 1
            self._limited_by_client[client] += 1
        else:
            self._by_client[client] += 1
        self.open += 1
        return Admitted(client, reason)

    def release(self, admitted: Admitted) -> None:
        self.open -= 1
        counts = self._by_client if admitted.limited is None else self._limited_by_client
        if admitted.limited is not None:
            self.limited_open -= 1
        counts[admitted.client] -= 1
        if counts[admitted.client] <= 0:
            del counts[admitted.client]
