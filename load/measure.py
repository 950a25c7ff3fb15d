"""Measuring helpers: bounded wrk runs, statistics, and the progress display on stderr."""

from __future__ import annotations

import math
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: with 64 samples p99 is the slowest one, p50 the 32nd."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, min(len(ordered), math.ceil(fraction * len(ordered)))) - 1]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def pull_backend_bytes(samples: dict[str, float]) -> float:
    """Bytes an edge read from its backend for pulls (its own pushes' reads aside), from its /metrics samples."""
    return sum(value for key, value in samples.items()
               if key.startswith("mirror_backend_bytes_total") and 'op="push_read"' not in key)


class Progress:
    """One line per step on stderr: elapsed time, which scenario of how many, and what just happened."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.current = ""
        self.started = time.monotonic()

    def scenario(self, name: str) -> None:
        self.current = name
        index = self.names.index(name) + 1 if name in self.names else 0
        self.step(f"── scenario {index}/{len(self.names)}: {name}")

    def step(self, message: str) -> None:
        prefix = f"[{time.monotonic() - self.started:6.1f}s]"
        label = f" {self.current}:" if self.current and not message.startswith("──") else ""
        print(f"{prefix}{label} {message}", file=sys.stderr, flush=True)


_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass
class WrkResult:
    requests_per_second: float
    bytes_per_second: float
    requests: int
    errors: int  # non-2xx/3xx answers plus socket errors


def wrk(url: str, seconds: float, connections: int, *, method: str = "GET", headers: dict[str, str] | None = None,
        workdir: Path) -> WrkResult:
    """One wrk run of `seconds` with `connections` keep-alive connections (wrk discards bodies: its own CPU is
    small, so the server is what is measured)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    script = workdir / f"wrk-{method.lower()}-{abs(hash(tuple(sorted((headers or {}).items()))))}.lua"
    script.write_text(f'wrk.method = "{method}"\n' + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items()))
    threads = max(1, min(2, connections))
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(script), url]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 90, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", output)
    requests = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if rps is None or transfer is None or requests is None:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(group) for group in socket_errors.groups())
    return WrkResult(float(rps.group(1)), float(transfer.group(1)) * _UNITS[transfer.group(2)], int(requests.group(1)), errors)


def blob_load(url: str, seconds: float, connections: int, buffer_size: int = 1 << 20) -> tuple[float, int]:
    """Full GETs of `url` over `connections` keep-alive sockets for `seconds`; returns (bytes/s, errors).

    wrk reads 8 KiB per syscall and tops out near 1 GB/s on this machine — below what sendfile serves — so the
    body is read here with `recv_into` a 1 MiB buffer, one thread per connection (the GIL is released while
    receiving). Only whole responses are counted; the run stops at the first full response after `seconds`.
    """
    host, _, path = url.removeprefix("http://").partition("/")
    address, _, port = host.partition(":")
    request = f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    deadline = time.monotonic() + seconds
    totals = {"bytes": 0, "errors": 0}
    lock = threading.Lock()

    def one() -> None:
        buffer = bytearray(buffer_size)
        view = memoryview(buffer)
        received = 0
        try:
            with socket.create_connection((address, int(port or 80)), timeout=60) as sock:
                while time.monotonic() < deadline:
                    sock.sendall(request)
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise ConnectionError("closed before the headers")
                        head += chunk
                    header_block, _, rest = head.partition(b"\r\n\r\n")
                    if not header_block.startswith(b"HTTP/1.1 200"):
                        raise ConnectionError(header_block.split(b"\r\n", 1)[0].decode())
                    length = int(re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", header_block).group(1))  # type: ignore[union-attr]
                    left = length - len(rest)
                    while left > 0:
                        count = sock.recv_into(view, min(buffer_size, left))
                        if not count:
                            raise ConnectionError("closed mid-body")
                        left -= count
                    received += length
        except (OSError, AttributeError):
            with lock:
                totals["errors"] += 1
        with lock:
            totals["bytes"] += received

    started = time.monotonic()
    threads = [threading.Thread(target=one, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 300)
    return totals["bytes"] / (time.monotonic() - started), totals["errors"]
