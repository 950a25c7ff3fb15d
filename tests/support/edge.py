"""Run the edge mirror as a real process (``python -m mirror serve --config FILE``) on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import tier
from tests.support.metrics import Metrics, scrape
from tests.support.ports import free_port

__all__ = ["ANONYMOUS_PUSH", "EdgeMirror", "Metrics", "filesystem_storage", "render_toml", "s3_storage"]

# Edges refuse anonymous pushes, deletes and mounts by default; tests of the push path open them on purpose.
ANONYMOUS_PUSH = {"anonymous": ["pull", "push", "delete"]}

REPO_ROOT = Path(__file__).resolve().parents[2]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. headers = {Authorization = ["Bearer x"]}
        return "{" + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_toml(sections: dict[str, Any]) -> str:
    """TOML for ``{"section": {key: value}}``; a list of tables (``"upstream": [{...}]``) becomes ``[[upstream]]``."""
    lines: list[str] = []
    for section, values in sections.items():
        for table in values if isinstance(values, list) else [values]:
            lines.append(f"[[{section}]]" if isinstance(values, list) else f"[{section}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


class EdgeMirror:
    """An edge mirror process with its own config file, cache directory and log."""

    def __init__(self, workdir: Path, storage: dict[str, dict[str, Any]], port: int | None = None, **sections: Any) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()  # a port chosen up front when other edges must know it (peers)
        self.host = f"127.0.0.1:{self.port}"
        http = {"addr": self.host, **sections.pop("http", {})}
        self.url = f"{'https' if http.get('certfile') else 'http'}://{self.host}"
        config: dict[str, Any] = {"http": http}
        config.update(storage)
        config["cache"] = {"dir": str(self.workdir / "cache"), **sections.pop("cache", {})}
        config.update(sections)
        self.config_path = self.workdir / "mirror.toml"
        self.config_path.write_text(render_toml(config))
        self.log_path = self.workdir / "mirror.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> "EdgeMirror":
        tier.refuse_server("starting an edge mirror process")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mirror", "serve", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"edge mirror exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"edge mirror did not answer /healthz in {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the edge at once (a crash: no shutdown code runs) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def metrics(self) -> Metrics:
        return scrape(self.url)

    def peak_rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc status")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> "EdgeMirror":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def s3_storage(endpoint: str, bucket: str, rootdirectory: str = "") -> dict[str, dict[str, Any]]:
    return {
        "storage": {"driver": "s3"},
        "storage.s3": {
            "region": "us-east-1",
            "regionendpoint": endpoint,
            "bucket": bucket,
            "accesskey": "x",
            "secretkey": "y",
            "rootdirectory": rootdirectory,
        },
    }


def filesystem_storage(rootdirectory: Path) -> dict[str, dict[str, Any]]:
    return {"storage": {"driver": "filesystem"}, "storage.filesystem": {"rootdirectory": str(rootdirectory)}}
