"""The remote tier with real parts: a token-auth registry:2 as the remote, SeaweedFS as the bucket, real edges."""

from __future__ import annotations

import hashlib
import threading
import time

import httpx

from tests.remote.conftest import (
    NS,
    blob_key,
    bucket_key_exists,
    repository_key,
    upstream_route,
    wait_for_writeback,
)
from tests.support import skopeo
from tests.support.remote_token import RATELIMIT_REMAINING

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


def test_two_edges_fetching_the_same_remote_image_at_once_write_one_consistent_copy(make_edge, push_remote, s3, tmp_path):
    image = push_remote("team/twin", [600_000, 250_000, 1_000], seed=103)
    edges = [make_edge("a"), make_edge("b")]
    results: dict[str, dict[str, str]] = {}
    errors: list[BaseException] = []

    def pull(edge) -> None:
        try:
            results[edge.host] = _pull(edge.host, "team/twin", tmp_path / edge.host.replace(":", "_"))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=pull, args=(edge,)) for edge in edges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert results[edges[0].host] == results[edges[1].host]
    for edge in edges:
        wait_for_writeback(edge)
    for digest in image.blob_digests:
        data = s3.get_object(Bucket="remote-tier", Key=blob_key(digest))["Body"].read()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        assert not bucket_key_exists(s3, f"edge-mirror/writeback/sha256/{digest[7:]}")
    written = sum(edge.metrics().value("mirror_writebacks_total", kind="blob", result="written") for edge in edges)
    assert written == len(image.blob_digests)


def test_an_unknown_ns_with_nothing_in_the_bucket_is_a_fast_404(make_edge):
    edge = make_edge()
    timings = []
    with httpx.Client(timeout=10) as client:
        client.get(f"{edge.url}/v2/")  # the connection, not the 404, is not what is timed
        for number in range(3):
            started = time.monotonic()
            response = client.head(f"{edge.url}/v2/library/nothing-{number}/manifests/v1?ns=unknown.example")
            timings.append(time.monotonic() - started)
            assert response.status_code == 404
    assert min(timings) < 0.5  # the best of three: a loaded CI machine adds its own delays, not the edge's


def test_the_routes_ns_reads_the_remote_under_the_prefix(make_edge, push_remote, proxy, token_server):
    image = push_remote("team/routed", [20_000], seed=104)
    edge = make_edge(route=upstream_route(proxy, token_server, default=False))
    routed = httpx.get(f"{edge.url}/v2/team/routed/manifests/v1?ns={NS}", headers=ACCEPT, timeout=30)
    assert routed.status_code == 200
    assert routed.headers["docker-content-digest"] == image.manifest_digest
    unrouted = httpx.get(f"{edge.url}/v2/team/routed/manifests/v1", headers=ACCEPT, timeout=30)
    assert unrouted.status_code == 404


def test_the_remotes_ratelimit_remaining_is_a_gauge_per_route(make_edge, push_remote):
    push_remote("team/counted", [5_000], seed=108)
    edge = make_edge()
    assert httpx.get(f"{edge.url}/v2/team/counted/manifests/v1", headers=ACCEPT, timeout=30).status_code == 200
    assert edge.metrics().value("mirror_remote_ratelimit_remaining", route=NS) == RATELIMIT_REMAINING


def test_a_remote_429_with_the_tag_in_the_bucket_serves_it_stale(make_edge, push_remote, proxy, token_server, tmp_path):
    image = push_remote("team/limited-cached", [10_000], seed=109)
    edge = make_edge(route=upstream_route(proxy, token_server, tag_ttl="0s"), cache={"tag_ttl": "0s"})
    skopeo.pull(f"{edge.host}/team/limited-cached:v1", tmp_path / "out")
    wait_for_writeback(edge)
    proxy.mode = "429"
    response = httpx.get(f"{edge.url}/v2/team/limited-cached/manifests/v1", headers=ACCEPT, timeout=30)
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == image.manifest_digest
    assert edge.metrics().value("mirror_remote_stale_total", route=NS) >= 1


def test_remote_down_serves_a_cached_tag_stale(make_edge, push_remote, proxy, token_server, tmp_path):
    image = push_remote("team/stale", [30_000], seed=105)
    edge = make_edge(route=upstream_route(proxy, token_server, tag_ttl="0s"), cache={"tag_ttl": "0s"})
    skopeo.pull(f"{edge.host}/team/stale:v1", tmp_path / "out")
    wait_for_writeback(edge)
    proxy.mode = "down"
    response = httpx.get(f"{edge.url}/v2/team/stale/manifests/v1", headers=ACCEPT, timeout=30)
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == image.manifest_digest
    assert edge.metrics().value("mirror_remote_stale_total", route=NS) >= 1


def test_remote_down_with_nothing_cached_is_a_fast_unavailable(make_edge, push_remote, proxy):
    push_remote("team/uncached", [10_000], seed=106)
    edge = make_edge()
    proxy.mode = "down"
    started = time.monotonic()
    response = httpx.get(f"{edge.url}/v2/team/uncached/manifests/v1", headers=ACCEPT, timeout=30)
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert time.monotonic() - started < 2


def test_a_remote_429_is_passed_on_with_retry_after(make_edge, push_remote, proxy):
    push_remote("team/limited", [10_000], seed=107)
    edge = make_edge()
    proxy.mode = "429"
    response = httpx.get(f"{edge.url}/v2/team/limited/manifests/v1", headers=ACCEPT, timeout=30)
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "7"
    assert response.json()["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_blob_redirects_are_followed_without_the_authorization_header(make_edge, push_remote, proxy, tmp_path):
    image = push_remote("team/redirected", [120_000], seed=110)
    proxy.mode = "redirect"
    edge = make_edge()
    skopeo.pull(f"{edge.host}/team/redirected:v1", tmp_path / "out")
    assert skopeo.blob_names(tmp_path / "out") == set(image.blob_digests)
    assert len(proxy.storage_authorization) >= len(image.blob_digests)
    assert proxy.storage_authorization == [None] * len(proxy.storage_authorization)


def _tag_requests(proxy, name: str) -> list:
    return [seen for seen in proxy.seen if seen.path.endswith(f"/{name}/manifests/v1")]


# The route's tag_ttl is 10m in the first test and 0s in the second, so neither waits it out in real time.


def test_a_remote_tag_is_trusted_within_tag_ttl(make_edge, push_remote, proxy, token_server):
    first = push_remote("team/moving", [7_000], seed=111)
    edge = make_edge(route=upstream_route(proxy, token_server, tag_ttl="10m"), cache={"tag_ttl": "0s"})
    url = f"{edge.url}/v2/team/moving/manifests/v1"
    assert httpx.get(url, headers=ACCEPT, timeout=30).headers["docker-content-digest"] == first.manifest_digest
    tag_requests = _tag_requests(proxy, "team/moving")
    push_remote("team/moving", [8_000], seed=112)  # the tag moves at the remote
    assert httpx.get(url, headers=ACCEPT, timeout=30).headers["docker-content-digest"] == first.manifest_digest
    assert _tag_requests(proxy, "team/moving") == tag_requests


def test_a_remote_tag_is_rechecked_with_a_head_once_tag_ttl_has_passed(make_edge, push_remote, proxy, token_server, s3):
    first = push_remote("team/rechecked", [7_000], seed=117)
    edge = make_edge(route=upstream_route(proxy, token_server, tag_ttl="0s"), cache={"tag_ttl": "0s"})
    url = f"{edge.url}/v2/team/rechecked/manifests/v1"
    assert httpx.get(url, headers=ACCEPT, timeout=30).headers["docker-content-digest"] == first.manifest_digest
    tag_requests = _tag_requests(proxy, "team/rechecked")
    second = push_remote("team/rechecked", [8_000], seed=118)  # the tag moves at the remote
    assert httpx.get(url, headers=ACCEPT, timeout=30).headers["docker-content-digest"] == second.manifest_digest
    rechecks = _tag_requests(proxy, "team/rechecked")[len(tag_requests):]
    assert rechecks and {seen.method for seen in rechecks} == {"HEAD"}
    wait_for_writeback(edge)
    key = repository_key("team/rechecked", "_manifests/tags/v1/current/link")
    assert s3.get_object(Bucket="remote-tier", Key=key)["Body"].read().decode() == second.manifest_digest


def test_a_large_remote_blob_is_fetched_in_parallel_ranges_once_and_written_back_in_parts(make_edge, push_remote, proxy, s3, tmp_path):
    image = push_remote("team/large", [20 * 1024 * 1024], seed=113)
    edge = make_edge(fill={"part_size": "2MiB", "first_part_size": "512KiB", "parallelism": 4})
    skopeo.pull(f"{edge.host}/team/large:v1", tmp_path / "out")
    layer = image.layer_digests[0]
    ranged = [seen for seen in proxy.seen if seen.method == "GET" and seen.path.endswith(layer) and seen.status == 206]
    assert len(ranged) > 4
    assert proxy.blob_bytes(layer) == image.layer_sizes[0]
    wait_for_writeback(edge)
    stored = s3.get_object(Bucket="remote-tier", Key=blob_key(layer))["Body"].read()
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == layer


def test_corrupt_bytes_from_the_remote_are_neither_served_whole_nor_written_back(make_edge, push_remote, proxy, s3):
    image = push_remote("team/corrupt", [90_000], seed=114)
    proxy.mode = "corrupt"
    edge = make_edge()
    layer = image.layer_digests[0]
    with httpx.stream("GET", f"{edge.url}/v2/team/corrupt/blobs/{layer}", timeout=30) as response:
        try:
            received = b"".join(response.iter_bytes())
        except httpx.HTTPError:
            received = b""
    assert "sha256:" + hashlib.sha256(received).hexdigest() != layer
    wait_for_writeback(edge)
    assert not bucket_key_exists(s3, blob_key(layer))
    assert edge.metrics().value("mirror_fills_total", result="digest_mismatch") == 1


def test_a_tag_whose_manifest_this_node_holds_is_written_back_from_the_cache(make_edge, push_remote, proxy, token_server, s3):
    image = push_remote("team/rewritten", [6_000], seed=115)
    edge = make_edge(route=upstream_route(proxy, token_server, tag_ttl="0s"), cache={"tag_ttl": "0s"})
    url = f"{edge.url}/v2/team/rewritten/manifests/v1"
    assert httpx.get(url, headers=ACCEPT, timeout=30).status_code == 200
    wait_for_writeback(edge)
    manifest_hex = image.manifest_digest[7:]
    lost = [  # as if the first write-back had never finished
        blob_key(image.manifest_digest),
        repository_key("team/rewritten", f"_manifests/revisions/sha256/{manifest_hex}/link"),
        repository_key("team/rewritten", "_manifests/tags/v1/current/link"),
    ]
    for key in lost:
        s3.delete_object(Bucket="remote-tier", Key=key)
    manifest_gets = sum(1 for seen in proxy.seen if seen.method == "GET" and "/manifests/" in seen.path)
    assert httpx.get(url, headers=ACCEPT, timeout=30).status_code == 200
    wait_for_writeback(edge)
    assert all(bucket_key_exists(s3, key) for key in lost)
    assert sum(1 for seen in proxy.seen if seen.method == "GET" and "/manifests/" in seen.path) == manifest_gets


def test_a_second_edge_with_the_remote_up_reads_the_bucket_and_asks_the_remote_only_for_the_tag(make_edge, push_remote, proxy, tmp_path):
    image = push_remote("team/shared", [150_000, 4_000], seed=116)
    first = make_edge("first")
    skopeo.pull(f"{first.host}/team/shared:v1", tmp_path / "first-pull")
    wait_for_writeback(first)
    seen_before = len(proxy.seen)
    second = make_edge("second")
    skopeo.pull(f"{second.host}/team/shared:v1", tmp_path / "second-pull")
    assert skopeo.dir_digests(tmp_path / "second-pull") == skopeo.dir_digests(tmp_path / "first-pull")
    asked = {(seen.method, seen.path) for seen in proxy.seen[seen_before:]}
    assert asked == {("HEAD", "/v2/team/shared/manifests/v1")}
    for digest, size in zip(image.blob_digests, [image.config_size, *image.layer_sizes]):
        assert proxy.blob_bytes(digest) == size


def test_a_cold_suffix_range_of_a_remote_only_blob_is_answered_from_the_remote(make_edge, push_remote, proxy):
    image = push_remote("team/suffix", [3 * 1024 * 1024 + 77], seed=123)
    edge = make_edge(fill={"part_size": "1MiB", "first_part_size": "256KiB", "min_part_size": "256KiB"})
    layer, size = image.layer_digests[0], image.layer_sizes[0]
    url = f"{edge.url}/v2/team/suffix/blobs/{layer}"
    footer = httpx.get(url, headers={"Range": "bytes=-51"}, timeout=30)
    whole = httpx.get(url, timeout=60)
    assert whole.status_code == 200 and "sha256:" + hashlib.sha256(whole.content).hexdigest() == layer
    assert footer.status_code == 206
    assert footer.headers["content-range"] == f"bytes {size - 51}-{size - 1}/{size}"
    assert footer.content == whole.content[-51:]
