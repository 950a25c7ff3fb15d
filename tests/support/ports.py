"""Free loopback TCP ports for the servers the tests start.

SeaweedFS opens a gRPC listener on every HTTP port + 10000, so a port is only handed out when that companion port
is free as well (and the port is therefore below 55535). Ports handed out by this process are remembered, so two
calls never return the same port (or each other's companion) even before the first caller has bound it.
"""

from __future__ import annotations

import socket
import threading

GRPC_OFFSET = 10000
MAX_PORT = 65535 - GRPC_OFFSET  # exclusive upper bound for a port whose companion must exist

_issued: set[int] = set()
_lock = threading.Lock()


def _bindable(port: int) -> bool:
    """Whether a loopback TCP listener could bind `port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(attempts: int = 500) -> int:
    """A free loopback TCP port below 55535 whose port + 10000 is free too.

    The kernel picks the candidate (bind to port 0), so ports are spread over the ephemeral range; the result is
    never one this process handed out before, nor the gRPC companion of one.
    """
    with _lock:
        for _ in range(attempts):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            if port >= MAX_PORT:
                continue
            taken = _issued | {issued + GRPC_OFFSET for issued in _issued}
            if port in taken or (port + GRPC_OFFSET) in taken:
                continue
            if not _bindable(port + GRPC_OFFSET):
                continue
            _issued.add(port)
            return port
    raise RuntimeError(f"no free loopback port pair (port, port+{GRPC_OFFSET}) found in {attempts} attempts")
