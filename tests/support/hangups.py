"""Clients that misbehave the way real ones do: hang up mid-body, read slowly, or never read at all.

Plain sockets, so each client controls exactly how much it reads before it closes; `ProcessWatch` samples
an edge process's RSS and open file descriptors from /proc while they run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path


def request_bytes(path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: edge"] + [f"{key}: {value}" for key, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def hang_up_once(port: int, request: bytes, read_bytes: int) -> int:
    """Send `request`, read about `read_bytes` of the answer, then close; returns the bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        got = 0
        while got < read_bytes:
            data = sock.recv(65536)
            if not data:
                break
            got += len(data)
        return got


def hang_up_loop(port: int, requests: list[bytes], clients: int, seconds: float, read_bytes: int = 64 * 1024) -> int:
    """`clients` threads, each hanging up on request after request (round robin over `requests`) for
    `seconds`; returns how many requests were made. Bounded in time: every thread stops by itself."""
    deadline = time.monotonic() + seconds
    counts = [0] * clients

    def client(index: int) -> None:
        turn = index
        while time.monotonic() < deadline:
            hang_up_once(port, requests[turn % len(requests)], read_bytes)
            turn += 1
            counts[index] += 1

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return sum(counts)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class ProcessWatch:
    """Samples a process's RSS every `interval` seconds in a thread, while used as a context manager."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_bytes(self.pid))
            self._stop.wait(self.interval)

    @property
    def peak(self) -> int:
        return max(self.samples)

    def __enter__(self) -> "ProcessWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
