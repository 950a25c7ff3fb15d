"""A slow, breakable link between the edge and SeaweedFS: ``load/emulator.py`` run as a process.

The emulator passes every byte unchanged (SigV4 stays valid) and caps bandwidth, so a fill of a few MiB takes
seconds: long enough for a test to kill the edge, or this link, mid-fill. `kill` drops every connection at once
(the backend seen from the edge vanishes); `start` brings it back on the same port.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.edge import REPO_ROOT
from tests.support.ports import free_port
from tests.support.processes import Server


class BreakableLink:
    def __init__(
        self, upstream_endpoint: str, workdir: Path, conn_bandwidth: str = "0", aggregate_bandwidth: str = "8MB"
    ) -> None:
        self.upstream = upstream_endpoint.removeprefix("http://")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.argv = [
            sys.executable, "-m", "load.emulator", "--listen", f"127.0.0.1:{self.port}", "--upstream", self.upstream,
            "--ttfb-fast-ms", "0", "--ttfb-slow-ms", "0", "--slow-fraction", "0",
            "--conn-bandwidth", conn_bandwidth, "--aggregate-bandwidth", aggregate_bandwidth,
        ]
        self.server: Server | None = None
        self.start()

    def start(self) -> None:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
        self.server = Server(self.argv, self.workdir / "link.log", env=env, cwd=REPO_ROOT)
        self.server.wait_http(f"{self.endpoint}/", timeout=30)

    def kill(self) -> None:
        """Drop the link at once: every connection through it is reset."""
        if self.server is not None:
            self.server.kill()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=2)

    def __enter__(self) -> "BreakableLink":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
