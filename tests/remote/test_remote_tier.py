"""The remote tier with real parts: a token-auth registry:2 as the remote, SeaweedFS as the bucket, real edges."""

from __future__ import annotations

import hashlib
import threading
import time

import httpx

from tests.remote.conftest import (
    ADMIN_TOKEN,
    NS,
    blob_key,
    bucket_key_exists,
    repository_key,
    upstream_route,
    wait_for_writeback,
)
from tests.support import skopeo

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"}


def _pull(edge_host: str, name: str, out) -> dict[str, str]:
    skopeo.pull(f"{edge_host}/{name}:v1", out)
    return skopeo.dir_digests(out)


def test_a_pull_through_the_edge_is_written_back_under_the_prefix(make_edge, push_remote, s3, tmp_path):
    image = push_remote("team/written", [300_000, 2_000], seed=101)
    edge = make_edge()
    skopeo.pull(f"{edge.host}/team/written:v1", tmp_path / "out")
    assert skopeo.blob_names(tmp_path / "out") == set(image.blob_digests)
    wait_for_writeback(edge)
    manifest_hex = image.manifest_digest.split(":")[1]
    for digest in image.blob_digests:
        data = s3.get_object(Bucket="remote-tier", Key=blob_key(digest))["Body"].read()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        link = s3.get_object(Bucket="remote-tier", Key=repository_key("team/written", f"_layers/sha256/{digest[7:]}/link"))
        assert link["Body"].read().decode() == digest
    assert bucket_key_exists(s3, blob_key(image.manifest_digest))
    assert bucket_key_exists(s3, repository_key("team/written", f"_manifests/revisions/sha256/{manifest_hex}/link"))
    current = s3.get_object(Bucket="remote-tier", Key=repository_key("team/written", "_manifests/tags/v1/current/link"))
    assert current["Body"].read().decode() == image.manifest_digest


def test_credentials_reach_the_token_realm_and_tokens_are_reused_per_scope(make_edge, push_remote, token_server, tmp_path):
    push_remote("team/tokens", [50_000], seed=102)
    edge = make_edge()
    before = len(token_server.requests)
    skopeo.pull(f"{edge.host}/team/tokens:v1", tmp_path / "out")
    asked = [request for request in token_server.requests[before:] if request.scope == "repository:team/tokens:pull"]
    assert len(asked) == 1
    assert asked[0].basic is not None and asked[0].basic.startswith("Basic ")
