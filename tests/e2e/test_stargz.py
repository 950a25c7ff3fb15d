"""A lazy-pulling snapshotter's first reads of an eStargz layer through a cold edge come at link latency
(issue 15): Debian's `ctr-remote` (stargz-snapshotter) converts a generated image to eStargz, containerd pushes
it to registry:2, and the footer then the table of contents are read through an edge whose bucket sits behind
the link emulator (150 ms to first byte, 10 MB/s per connection, 2 connections per fill: the whole 64 MiB layer
would take over three seconds)."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
import time

import httpx
import pytest

from tests.support import images, skopeo
from tests.support.daemons import offline_env
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.link import LinkEmulator

MIB = 1024 * 1024
FOOTER = 51  # eStargz footer: an empty gzip member whose extra field holds the TOC offset
TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest"
ESTARGZ_DEADLINE = 5 * 0.150 + 0.5  # about two round trips each, with a wide margin for two shared cores


@pytest.fixture(scope="module")
def estargz_layer(registry_s3, containerd, tmp_path_factory) -> tuple[str, int, str]:
    """(digest, size, TOC digest) of the eStargz layer of `team/lazy-esgz:v1`, pushed by containerd."""
    if shutil.which("ctr-remote") is None:
        raise RuntimeError("ctr-remote is missing: apt-get install stargz-snapshotter")
    layout = tmp_path_factory.mktemp("esgz") / "layout"
    images.build_image(layout, "v1", [64 * MIB], seed=1515)
    skopeo.push(layout, "v1", f"{registry_s3.host}/team/lazy:v1")
    source, target = f"{registry_s3.host}/team/lazy:v1", f"{registry_s3.host}/team/lazy-esgz:v1"
    containerd.ctr("images", "pull", "--plain-http", source)
    subprocess.run(
        ["ctr-remote", "-a", str(containerd.socket), "-n", "default", "images", "convert", "--estargz", "--oci", source, target],
        check=True, capture_output=True, timeout=300, env=offline_env(),
    )
    containerd.ctr("images", "push", "--plain-http", target)
    manifest = httpx.get(
        f"{registry_s3.url}/v2/team/lazy-esgz/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=30,
    ).json()
    layer = manifest["layers"][0]
    return layer["digest"], layer["size"], layer["annotations"][TOC_DIGEST]


def test_estargz_footer_and_toc_of_a_cold_layer_arrive_at_link_latency(seaweed, estargz_layer, tmp_path):
    digest, size, toc_digest = estargz_layer
    link = LinkEmulator(tmp_path, seaweed.endpoint, 150, "10MB", "400MB")
    try:
        with EdgeMirror(tmp_path / "edge", s3_storage(link.endpoint, "registry"), fill={"parallelism": 2}) as edge:
            url = f"{edge.url}/v2/team/lazy-esgz/blobs/{digest}"
            started = time.monotonic()
            footer = httpx.get(url, headers={"Range": f"bytes=-{FOOTER}"}, timeout=60)
            footer_seconds = time.monotonic() - started
            assert footer.status_code == 206
            extra = gzip.GzipFile(fileobj=io.BytesIO(footer.content))  # the footer is a valid empty gzip member
            assert extra.read() == b""
            marker = footer.content.index(b"STARGZ")
            toc_offset = int(footer.content[marker - 16:marker], 16)
            started = time.monotonic()
            toc = httpx.get(url, headers={"Range": f"bytes={toc_offset}-{size - FOOTER - 1}"}, timeout=60)
            toc_seconds = time.monotonic() - started
            assert toc.status_code == 206
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(toc.content))) as archive:
                member = archive.extractfile("stargz.index.json")
                assert member is not None
                index = member.read()
            assert "sha256:" + hashlib.sha256(index).hexdigest() == toc_digest
            print(f"eStargz footer {footer_seconds * 1000:.0f} ms, TOC {toc_seconds * 1000:.0f} ms, layer {size / MIB:.1f} MiB")
            assert footer_seconds < ESTARGZ_DEADLINE
            assert toc_seconds < ESTARGZ_DEADLINE
    finally:
        link.stop()
