"""The reference registry:2 (Debian docker-registry 2.8), with the S3 or filesystem driver, or in proxy mode."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson

from tests.support.processes import Server, free_port


class Registry2:
    def __init__(self, storage: dict[str, Any], workdir: Path, proxy_remote: str | None = None) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is missing: apt-get install docker-registry")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": storage,
            "http": {"addr": self.host},
        }
        if proxy_remote:
            config["proxy"] = {"remoteurl": proxy_remote}
        config_path = workdir / "config.yml"
        config_path.write_bytes(orjson.dumps(config))  # JSON is YAML
        env = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
        self.server = Server([binary, "serve", str(config_path)], workdir / "registry.log", env=env)
        self.server.wait_http(f"{self.url}/v2/", timeout=30)

    @classmethod
    def s3(cls, endpoint: str, bucket: str, rootdirectory: str = "", workdir: Path | None = None) -> "Registry2":
        s3: dict[str, Any] = {
            "region": "us-east-1", "regionendpoint": endpoint, "bucket": bucket, "accesskey": "x",
            "secretkey": "y", "secure": False, "v4auth": True, "chunksize": 5242880,
        }
        if rootdirectory:
            s3["rootdirectory"] = rootdirectory
        storage = {"s3": s3, "redirect": {"disable": True}, "delete": {"enabled": True}}
        return cls(storage, workdir or Path(tempfile.mkdtemp(prefix="registry2-")))

    @classmethod
    def filesystem(cls, rootdirectory: Path, workdir: Path | None = None) -> "Registry2":
        storage = {"filesystem": {"rootdirectory": str(rootdirectory)}, "delete": {"enabled": True}}
        return cls(storage, workdir or Path(tempfile.mkdtemp(prefix="registry2-")))

    @classmethod
    def proxy(cls, remote_url: str, rootdirectory: Path, workdir: Path | None = None) -> "Registry2":
        storage = {"filesystem": {"rootdirectory": str(rootdirectory)}}
        return cls(storage, workdir or Path(tempfile.mkdtemp(prefix="registry2-proxy-")), proxy_remote=remote_url)

    def stop(self) -> None:
        self.server.stop()
