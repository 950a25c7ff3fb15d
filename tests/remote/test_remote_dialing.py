"""What the remote tier may dial, with a real edge and a remote that redirects: the route's own host, public
addresses and the route's ``allowed_networks`` only (SECURITY.md, "What the remote tier may dial").

Only loopback is available here, so "private" is modelled with a second loopback address: the route's URL is on
127.0.0.1, and 127.0.0.2 (a loopback address, never public) stands for the node's metadata service or a cluster
address. Public-vs-private with real names is shown in ``tests/unit/test_remote_dialing.py`` with an injected
resolver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.remote.conftest import NS, upstream_route
from tests.support.remote_token import CountingProxy


@pytest.fixture
def elsewhere(remote) -> Iterator[CountingProxy]:
    """Blob storage on 127.0.0.2: "an internal address" that serves the remote's blobs to whoever asks."""
    storage = CountingProxy(remote.host, storage_root=Path(remote.config["storage"]["filesystem"]["rootdirectory"]), bind="127.0.0.2")
    try:
        yield storage
    finally:
        storage.stop()


@pytest.fixture
def same_host_other_port(remote) -> Iterator[CountingProxy]:
    storage = CountingProxy(remote.host, storage_root=Path(remote.config["storage"]["filesystem"]["rootdirectory"]))
    try:
        yield storage
    finally:
        storage.stop()


def _ranged_blob_get(edge, name: str, digest: str) -> httpx.Response:
    return httpx.get(f"{edge.url}/v2/{name}/blobs/{digest}", headers={"Range": "bytes=0-99"}, timeout=30)


def test_a_redirect_to_another_loopback_address_is_refused_and_never_dialed(make_edge, push_remote, proxy, elsewhere):
    image = push_remote("team/ssrf", [50_000], seed=140)
    proxy.mode, proxy.redirect_to = "redirect", elsewhere.url
    edge = make_edge()
    response = _ranged_blob_get(edge, "team/ssrf", image.layer_digests[0])
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "127.0.0.2" not in response.text  # the client learns nothing about the address
    assert elsewhere.seen == []  # never dialed: not a byte asked for, none served
    assert "refused to dial 127.0.0.2 (loopback)" in edge.log_tail(200)
    assert edge.metrics().value("mirror_remote_requests_total", route=NS, op="get", status="refused") >= 1


def test_a_redirect_to_another_port_of_the_routes_own_host_is_followed(make_edge, push_remote, proxy, same_host_other_port):
    image = push_remote("team/samehost", [50_000], seed=141)
    proxy.mode, proxy.redirect_to = "redirect", same_host_other_port.url
    edge = make_edge()
    layer = image.layer_digests[0]
    response = _ranged_blob_get(edge, "team/samehost", layer)
    assert response.status_code == 206, response.text
    assert response.content == image.blob_bytes(layer)[:100]
    assert any(seen.path.endswith(layer) for seen in same_host_other_port.seen)  # the storage reads went there


def test_allowed_networks_lets_a_redirect_reach_a_listed_private_address(make_edge, push_remote, proxy, token_server, elsewhere):
    image = push_remote("team/allowed", [50_000], seed=142)
    proxy.mode, proxy.redirect_to = "redirect", elsewhere.url
    edge = make_edge(route=upstream_route(proxy, token_server, allowed_networks=["127.0.0.2/32"]))
    layer = image.layer_digests[0]
    response = _ranged_blob_get(edge, "team/allowed", layer)
    assert response.status_code == 206, response.text
    assert response.content == image.blob_bytes(layer)[:100]
    assert any(seen.path.endswith(layer) for seen in elsewhere.seen)


def test_a_token_realm_on_another_address_is_refused_and_never_dialed(make_edge, push_remote, proxy, elsewhere):
    push_remote("team/realm", [10_000], seed=143)
    proxy.realm = f"{elsewhere.url}/token"
    edge = make_edge()
    response = httpx.get(f"{edge.url}/v2/team/realm/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=30)
    assert response.status_code == 503, response.text
    assert elsewhere.seen == []
    assert "refused to dial 127.0.0.2 (loopback) for the token realm" in edge.log_tail(200)
    assert edge.metrics().value("mirror_remote_requests_total", route=NS, op="head", status="refused") >= 1
