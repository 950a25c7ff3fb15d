"""The benchmark's Storj-like link emulator (`load/emulator.py`) between an edge and the S3 server, for tests
that need a far-away bucket: a fixed time to first byte and capped bandwidth, with byte counters."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import Server

REPO_ROOT = Path(__file__).resolve().parents[2]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LinkEmulator:
    """`python -m load.emulator` in front of `upstream` (``http://host:port``); `endpoint` is its S3 address."""

    def __init__(self, workdir: Path, upstream: str, ttfb_ms: float, conn_bandwidth: str, aggregate_bandwidth: str) -> None:
        self.port, control = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.ttfb = ttfb_ms / 1000
        self._stats_url = f"http://127.0.0.1:{control}/stats"
        argv = [
            sys.executable, "-m", "load.emulator", "--listen", f"127.0.0.1:{self.port}",
            "--upstream", upstream.split("://", 1)[1], "--control", f"127.0.0.1:{control}",
            "--ttfb-fast-ms", str(ttfb_ms), "--ttfb-slow-ms", str(ttfb_ms), "--slow-fraction", "0",
            "--conn-bandwidth", conn_bandwidth, "--aggregate-bandwidth", aggregate_bandwidth,
        ]
        self.server = Server(argv, Path(workdir) / "emulator.log", cwd=REPO_ROOT)
        self.server.wait_http(self._stats_url, timeout=20)

    def bytes_down(self) -> int:
        """Bytes the link carried from the S3 server to its clients (the backend egress)."""
        with _OPENER.open(self._stats_url, timeout=10) as response:
            return int(json.loads(response.read())["bytes_down"])

    def stop(self) -> None:
        self.server.stop(timeout=5)
