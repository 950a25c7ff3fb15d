"""The reference registry:2 (Debian `docker-registry` 2.8): S3 driver, filesystem driver, or pull-through proxy.

The config is written as JSON (which is YAML) to ``config.yml`` in the work directory. The process runs without
``AWS_CA_BUNDLE`` in its environment: the Go AWS SDK in docker-registry panics on it. Upload purging is off, so
the registry never walks the storage on its own in the background during a test. With ``metrics=True`` the
debug server exposes Prometheus metrics at ``debug_url + "/metrics"`` (``registry_http_request_duration_seconds``
by handler and method, ``registry_storage_*``...).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson

from tests.support.ports import free_port
from tests.support.processes import Server

S3_CHUNK_SIZE = 5242880


def s3_storage_section(endpoint: str, bucket: str, rootdirectory: str = "", delete: bool = True) -> dict[str, Any]:
    """The `storage` section for the S3 driver against `endpoint` (credentials "x"/"y", us-east-1, no redirects)."""
    s3: dict[str, Any] = {
        "region": "us-east-1",
        "regionendpoint": endpoint,
        "bucket": bucket,
        "accesskey": "x",
        "secretkey": "y",
        "secure": False,
        "v4auth": True,
        "chunksize": S3_CHUNK_SIZE,
    }
    if rootdirectory:
        s3["rootdirectory"] = rootdirectory
    return {"s3": s3, "redirect": {"disable": True}, "delete": {"enabled": delete}}


def filesystem_storage_section(rootdirectory: Path, delete: bool = True) -> dict[str, Any]:
    """The `storage` section for the filesystem driver rooted at `rootdirectory`."""
    return {"filesystem": {"rootdirectory": str(rootdirectory)}, "delete": {"enabled": delete}}


class Registry2:
    """A running docker-registry on ``127.0.0.1:<free port>``; `url` is ``http://host``, `host` is ``127.0.0.1:PORT``."""

    def __init__(
        self,
        storage: dict[str, Any],
        workdir: Path | None = None,
        proxy_remote: str | None = None,
        log_level: str = "warn",
        timeout: float = 30,
        metrics: bool = False,
        auth: dict[str, Any] | None = None,
        notifications: list[dict[str, Any]] | None = None,
    ) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is missing: apt-get install docker-registry")
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="registry2-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        storage = {"maintenance": {"uploadpurging": {"enabled": False}}, **storage}
        self.config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": log_level, "accesslog": {"disabled": log_level not in ("info", "debug")}},
            "storage": storage,
            "http": {"addr": self.host, "secret": "edge-mirror-tests"},
        }
        self.debug_url: str | None = None
        if metrics:
            debug_host = f"127.0.0.1:{free_port()}"
            self.debug_url = f"http://{debug_host}"
            self.config["http"]["debug"] = {"addr": debug_host, "prometheus": {"enabled": True, "path": "/metrics"}}
        if auth:
            self.config["auth"] = auth
        if notifications:
            # e.g. [{"name": ..., "url": ..., "headers": {"Authorization": ["Bearer <token>"]}, "timeout": "2s",
            #        "threshold": 3, "backoff": "500ms"}]: registry:2 POSTs event envelopes there.
            self.config["notifications"] = {"endpoints": notifications}
        if proxy_remote:
            self.config["proxy"] = {"remoteurl": proxy_remote}
        if auth:
            self.config["auth"] = auth  # e.g. {"token": {"realm": ..., "service": ..., "issuer": ..., "rootcertbundle": ...}}
        self.config_path = self.workdir / "config.yml"
        self.config_path.write_bytes(orjson.dumps(self.config, option=orjson.OPT_INDENT_2))  # JSON is YAML
        env = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
        self.log_path = self.workdir / "registry.log"
        self.server = Server([binary, "serve", str(self.config_path)], self.log_path, env=env, cwd=self.workdir)
        try:
            # With auth, /v2/ answers 401 with the challenge: that still means the registry is up.
            ok = (200, 401) if auth else (200,)
            self.startup_seconds = self.server.wait_http(f"{self.url}/v2/", timeout=timeout, ok=ok)
        except BaseException:
            self._cleanup()
            raise

    @classmethod
    def s3(
        cls, endpoint: str, bucket: str, rootdirectory: str = "", workdir: Path | None = None, **options: Any
    ) -> "Registry2":
        """registry:2 with the S3 driver on `bucket` at `endpoint` (chunksize 5 MiB, redirects off, delete on)."""
        return cls(s3_storage_section(endpoint, bucket, rootdirectory), workdir, **options)

    @classmethod
    def filesystem(cls, rootdirectory: Path, workdir: Path | None = None, **options: Any) -> "Registry2":
        """registry:2 with the filesystem driver on `rootdirectory` (delete on)."""
        return cls(filesystem_storage_section(rootdirectory), workdir, **options)

    @classmethod
    def proxy(cls, remote_url: str, rootdirectory: Path, workdir: Path | None = None, **options: Any) -> "Registry2":
        """registry:2 as a pull-through cache of `remote_url`, caching on the filesystem under `rootdirectory`."""
        storage = {"filesystem": {"rootdirectory": str(rootdirectory)}}
        return cls(storage, workdir, proxy_remote=remote_url, **options)

    @property
    def running(self) -> bool:
        return self.server.running

    def log_tail(self, lines: int = 40) -> str:
        return self.server.log_tail(lines)

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s) and remove the work directory if this helper created it."""
        self.server.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Registry2":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
