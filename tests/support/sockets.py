"""Plain-socket reading for tests that speak HTTP/1.1 by hand (to see exactly what the edge sends)."""

from __future__ import annotations

import socket


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the peer sends until it closes the connection or resets it, or `timeout` seconds pass with
    nothing received."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data
