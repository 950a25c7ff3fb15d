"""Debian's real Prometheus as a plain process: its own config file and data directory, a free loopback port.

`Prometheus(workdir, scrape_configs)` writes ``prometheus.yml`` (1 s scrape and evaluation unless the configs say
otherwise) with the given rule files, starts ``prometheus`` and waits for ``/-/ready``; `query` evaluates PromQL
through the HTTP API, `rules` lists the rules' health and state.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.ports import free_port
from tests.support.processes import start

__all__ = ["Prometheus"]


class Prometheus:
    def __init__(
        self, workdir: Path, scrape_configs: list[dict[str, Any]], rule_files: list[Path] = (), timeout: float = 60
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is missing: scripts/install-test-deps.sh installs Debian's prometheus")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": scrape_configs,
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))  # JSON is YAML
        self.server = start(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            self.workdir / "prometheus.log",
            url=f"{self.url}/-/ready",
            timeout=timeout,
            cwd=self.workdir,
        )
        self._client = httpx.Client(base_url=self.url, timeout=30, trust_env=False)

    def query(self, expression: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one unlabelled sample) `expression` gives at `at` (default now)."""
        params = {"query": expression}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = self._client.get("/api/v1/query", params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"Prometheus refused {expression!r}: {response.status_code} {body}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its state, health and last error (``/api/v1/rules``)."""
        body = self._client.get("/api/v1/rules").json()
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]

    def values(self, expression: str, at: float | None = None) -> dict[frozenset[tuple[str, str]], float]:
        """{labels: value} of the result."""
        return {frozenset(item["metric"].items()): float(item["value"][1]) for item in self.query(expression, at)}

    def wait_for(self, expression: str, predicate: Any, timeout: float, at: float | None = None) -> Any:
        """Poll `expression` (every 0.25 s) until `predicate(values)` is true; return those values."""
        deadline = time.monotonic() + timeout
        while True:
            values = self.values(expression, at)
            if predicate(values):
                return values
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression!r} still {values} after {timeout}s")
            time.sleep(0.25)

    def stop(self) -> None:
        self._client.close()
        self.server.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self.server.log_tail(lines)
