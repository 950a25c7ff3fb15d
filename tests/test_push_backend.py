"""The write side of the backends, driven in-process against the real SeaweedFS S3 server and a local directory."""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from mirror import layout
from mirror.config import S3Config
from mirror.upstream import s3 as s3_module
from mirror.upstream.filesystem import FilesystemUpstream
from mirror.upstream.s3 import S3Upstream
from tests.support.spooled_parts import part_from_the_middle_of_a_spool

MIB = 1024 * 1024
BUCKET = "registry"


def _s3(seaweed, rootdirectory: str) -> S3Upstream:
    settings = S3Config(
        region="us-east-1", regionendpoint=seaweed.endpoint, bucket=BUCKET, accesskey="x", secretkey="y",
        rootdirectory=rootdirectory,
    )
    return S3Upstream(settings, pool_size=32)


async def _with_s3(seaweed, rootdirectory: str, work):  # type: ignore[no-untyped-def]
    upstream = _s3(seaweed, rootdirectory)
    await upstream.start()
    try:
        return await work(upstream)
    finally:
        await upstream.close()


def test_s3_delete_tree_removes_every_key_below_and_nothing_beside(seaweed):
    root = f"tree-{uuid.uuid4().hex[:8]}"
    doomed = [f"a/b/{index:04d}" for index in range(1030)] + ["a/b/deep/er/link"]  # more than one DeleteObjects page
    kept = ["a/bc/link", "a/b-sibling", "a/other/link"]

    async def work(upstream: S3Upstream) -> None:
        semaphore = asyncio.Semaphore(32)

        async def put(key: str) -> None:
            async with semaphore:
                await upstream.put(key, b"x")

        await asyncio.gather(*(put(key) for key in doomed + kept))
        await upstream.delete_tree("a/b")
        await upstream.delete_tree("a/never-existed")

    asyncio.run(_with_s3(seaweed, root, work))
    assert seaweed.keys(BUCKET, f"{root}/") == sorted(f"{root}/{key}" for key in kept)


def test_filesystem_delete_tree(tmp_path: Path):
    upstream = FilesystemUpstream(tmp_path)

    async def work() -> None:
        await upstream.put("a/b/c/link", b"x")
        await upstream.put("a/bc/link", b"y")
        await upstream.delete_tree("a/b")
        await upstream.delete_tree("a/missing")

    asyncio.run(work())
    assert not (tmp_path / "a" / "b").exists()
    assert (tmp_path / "a" / "bc" / "link").read_bytes() == b"y"


def test_s3_copy_above_the_copyobject_limit_streams_parts_without_uploadpartcopy(seaweed, monkeypatch):
    """Objects over CopyObject's 5 GiB limit are copied part by part through a spool file (limit shrunk here)."""
    monkeypatch.setattr(s3_module, "COPY_OBJECT_LIMIT", 1 * MIB)
    monkeypatch.setattr(s3_module, "STREAMED_COPY_PART", 5 * MIB)
    data = random.Random(7).randbytes(12 * MIB + 3)
    root = f"copy-{uuid.uuid4().hex[:8]}"
    calls: list[str] = []

    async def work(upstream: S3Upstream) -> bytes:
        original = upstream._client.upload_part_copy

        async def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append("upload_part_copy")
            return await original(*args, **kwargs)

        upstream._client.upload_part_copy = refuse
        upload_id = await upstream.start_multipart("source")
        etag = await upstream.put_part("source", upload_id, 1, data, len(data))
        await upstream.complete_multipart("source", upload_id, [(1, etag)])
        await upstream.copy("source", "destination", len(data))
        return b"".join([chunk async for chunk in upstream.read_range("destination", 0, len(data))])

    copied = asyncio.run(_with_s3(seaweed, root, work))
    assert calls == []
    assert hashlib.sha256(copied).digest() == hashlib.sha256(data).digest()


def test_layout_keys_of_the_write_side():
    assert layout.tag_directory("team/app", "v1") == "docker/registry/v2/repositories/team/app/_manifests/tags/v1"
    assert layout.tag_current_link("team/app", "v1").startswith(layout.tag_directory("team/app", "v1") + "/")
    directory = layout.upload_directory("app", "f" * 32)
    assert directory == f"docker/registry/v2/repositories/app/_uploads/{'f' * 32}"
    for key in (
        layout.upload_data("app", "f" * 32),
        layout.upload_state("app", "f" * 32),
        layout.upload_started_at("app", "f" * 32),
        layout.upload_tail("app", "f" * 32, "a" * 32),
    ):
        assert key.startswith(directory + "/")
    assert layout.upload_tail("app", "f" * 32, "a" * 32) != layout.upload_tail("app", "f" * 32, "b" * 32)


@pytest.mark.parametrize("size", [0, 1, 5 * MIB - 1])
def test_filesystem_multipart_round_trip(tmp_path: Path, size: int):
    upstream = FilesystemUpstream(tmp_path)
    data = random.Random(size).randbytes(size)

    async def work() -> bytes:
        upload_id = await upstream.start_multipart("x/data")
        half = size // 2
        first = await upstream.put_part("x/data", upload_id, 1, data[:half], half)
        second = await upstream.put_part("x/data", upload_id, 2, data[half:], size - half)
        await upstream.complete_multipart("x/data", upload_id, [(1, first), (2, second)])
        return b"".join([chunk async for chunk in upstream.read_range("x/data", 0, size)])

    assert asyncio.run(work()) == data
    assert [path.name for path in (tmp_path / "x").iterdir()] == ["data"]


def test_s3_parts_over_plain_http_are_signed_and_arrive_whole(seaweed, tmp_path: Path):
    """A part read from a spool file (its `size` bytes from the file's position on: a reused spool holds an older
    part's bytes after them) is sent with its sha256 in the signature over plain HTTP (the bucket's only check of
    the bytes there), and the bucket holds exactly those bytes."""
    data = random.Random(11).randbytes(5 * MIB + 12345)
    root = f"unsigned-{uuid.uuid4().hex[:8]}"
    signed: list[bytes] = []

    async def work(upstream: S3Upstream) -> bytes:
        upstream._client.meta.events.register(
            "before-send.s3.UploadPart", lambda request, **_: signed.append(request.headers["X-Amz-Content-SHA256"])
        )
        return await part_from_the_middle_of_a_spool(upstream, tmp_path / "spool", "blob", data)

    stored = asyncio.run(_with_s3(seaweed, root, work))
    assert signed == [hashlib.sha256(data).hexdigest().encode()]
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("endpoint, signed", [("https://gateway.storjshare.io", False), ("", False),
                                              ("http://127.0.0.1:8333", True)])
def test_s3_payload_signing_is_left_to_tls_only_when_the_endpoint_speaks_it(endpoint: str, signed: bool) -> None:
    """UNSIGNED-PAYLOAD saves a sha256 pass per pushed byte where TLS guards the bytes (an https endpoint, or AWS's
    default); over plain HTTP the signed payload hash is the bucket's only check, so it stays."""
    settings = S3Config(region="us-east-1", regionendpoint=endpoint, bucket="b", accesskey="x", secretkey="y")

    async def client_config() -> Any:
        upstream = S3Upstream(settings, pool_size=1)
        await upstream.start()
        try:
            return upstream._client.meta.config.s3
        finally:
            await upstream.close()

    assert asyncio.run(client_config())["payload_signing_enabled"] is signed
