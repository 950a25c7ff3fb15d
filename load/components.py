"""The contenders and the world they run in, all on loopback in one temporary directory.

The real-component launchers are shared with the test suite (``tests/support``): SeaweedFS as the bucket, the
Debian registry:2 (central, S3 driver; and proxy mode), the edge mirror as a process. This module adds the link
emulator and nginx, and wires everything up the way a far region sees it:

    clients ─▶ edge (S3 backend) ──────────────▶ emulator ─▶ SeaweedFS
    clients ─▶ registry:2 proxy ─▶ registry:2 central ─▶ emulator ─▶ SeaweedFS     (and clients ─▶ central directly)
    clients ─▶ nginx (sendfile of the blob file the edge has cached)
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.edge import EdgeMirror, s3_storage
from tests.support.processes import Server, free_port
from tests.support.registry2 import Registry2
from tests.support.seaweed import SeaweedS3

BUCKET = "registry"


class Emulator:
    """`python -m load.emulator` in front of the bucket, with counters read from its stats file."""

    def __init__(self, workdir: Path, upstream_endpoint: str, **flags: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.stats_file = workdir / f"emulator-{self.port}.json"
        argv = [
            sys.executable, "-m", "load.emulator", "--listen", f"127.0.0.1:{self.port}",
            "--upstream", upstream_endpoint.split("://", 1)[1], "--stats-file", str(self.stats_file),
        ]
        for key, value in flags.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        self.server = Server(argv, workdir / f"emulator-{self.port}.log", cwd=Path(__file__).resolve().parents[1])
        deadline = time.monotonic() + 20
        while not self.stats_file.exists():
            if time.monotonic() > deadline or self.server.process.poll() is not None:
                raise RuntimeError(f"emulator did not start:\n{self.server.log_tail()}")
            time.sleep(0.05)

    def bytes_served(self) -> int:
        time.sleep(0.3)  # the stats file is rewritten every 0.2 s
        return int(json.loads(self.stats_file.read_text())["bytes_to_client"])

    def stop(self) -> None:
        self.server.stop(timeout=5)


class Nginx:
    """nginx serving one directory with sendfile: the local-serving limit for a warm blob."""

    def __init__(self, workdir: Path, root: Path) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "nginx.conf"
        config.write_text(
            "daemon off; user root; worker_processes 1; pid %(w)s/nginx.pid; error_log %(w)s/error.log;\n"
            "events { worker_connections 1024; }\n"
            "http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n"
            "  client_body_temp_path %(w)s/tmp; proxy_temp_path %(w)s/tmp; fastcgi_temp_path %(w)s/tmp;\n"
            "  uwsgi_temp_path %(w)s/tmp; scgi_temp_path %(w)s/tmp;\n"
            "  server { listen 127.0.0.1:%(p)d; root %(r)s; default_type application/octet-stream; } }\n"
            % {"w": workdir, "p": self.port, "r": root}
        )
        (workdir / "tmp").mkdir(exist_ok=True)
        self.server = Server([binary, "-c", str(config), "-p", str(workdir)], workdir / "nginx.log")
        self.server.wait_http(f"{self.url}/", timeout=20, ok=(200, 403, 404))

    def stop(self) -> None:
        self.server.stop(timeout=5)


class World:
    """SeaweedFS, a registry:2 that pushes straight into it (setup only, not measured), and helpers to start
    contenders that read through their own emulator."""

    def __init__(self, workdir: Path, link_flags: dict[str, Any], edge_part_size: str = "64MiB") -> None:
        self.workdir = workdir
        self.link_flags = link_flags
        self.edge_part_size = edge_part_size
        self.seaweed = SeaweedS3(workdir / "seaweed")
        self.seaweed.create_bucket(BUCKET)
        self.pusher = Registry2.s3(self.seaweed.endpoint, BUCKET, workdir=workdir / "pusher")
        self._stoppable: list[Any] = [self.pusher]

    def emulator(self, label: str) -> Emulator:
        emulator = Emulator(self.workdir / "emulators" / f"{label}-{len(self._stoppable)}", self.seaweed.endpoint, **self.link_flags)
        self._stoppable.append(emulator)
        return emulator

    def edge(self, label: str, emulator: Emulator, **sections: dict[str, Any]) -> EdgeMirror:
        sections.setdefault("fill", {"part_size": self.edge_part_size, "first_part_size": "1MiB"})
        edge = EdgeMirror(self.workdir / "edges" / f"{label}-{len(self._stoppable)}", s3_storage(emulator.endpoint, BUCKET), **sections).start()
        self._stoppable.append(edge)
        return edge

    def central(self, label: str, emulator: Emulator) -> Registry2:
        """registry:2 with the S3 driver reading through `emulator` (the 'seed setup' clients may pull from)."""
        registry = Registry2.s3(emulator.endpoint, BUCKET, workdir=self.workdir / "central" / label)
        self._stoppable.append(registry)
        return registry

    def proxy(self, label: str, remote: Registry2) -> Registry2:
        root = self.workdir / "proxies" / label / "root"
        registry = Registry2.proxy(remote.url, root, workdir=self.workdir / "proxies" / label)
        self._stoppable.append(registry)
        return registry

    def nginx(self, root: Path) -> Nginx:
        server = Nginx(self.workdir / "nginx", root)
        self._stoppable.append(server)
        return server

    def release(self, component: Any) -> None:
        component.stop()
        if component in self._stoppable:
            self._stoppable.remove(component)

    def stop_contenders(self) -> None:
        """Stop everything a scenario started; the bucket and the pusher stay for the next scenario."""
        for component in reversed(self._stoppable[1:]):
            try:
                component.stop()
            except Exception:  # noqa: BLE001 - teardown must reach every component
                pass
        del self._stoppable[1:]

    def close(self) -> None:
        self.stop_contenders()
        self.pusher.stop()
        self.seaweed.stop()
