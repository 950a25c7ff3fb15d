"""What the remote tier may dial (`mirror.upstream.dialing`): the address classifier on literal addresses, the
route policy, and the remote client with an injected resolver that answers public-looking names with a private
address (DNS rebinding), against a fake remote on loopback. No real DNS."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import socket
import threading
from typing import Any, Iterator

import orjson
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from mirror.config import ConfigError, RemoteConfig, load
from mirror.reference import parse_digest
from mirror.upstream.dialing import DialPolicy, DialRefused, address_class
from mirror.upstream.registry import RemoteRegistry
from mirror.upstream.registryauth import DialRefusedError
from tests.support.ports import free_port

DIGEST = parse_digest("sha256:" + "cd" * 32)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("169.254.169.254", "link_local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "not_global"),  # carrier-grade NAT
        ("127.0.0.1", "loopback"),
        ("127.3.2.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is judged by the IPv4 address inside
        ("::ffff:169.254.169.254", "link_local"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 carrying 127.0.0.1
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("fe80::1", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("fd00::1", "private"),
        ("fc00::1", "private"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("8.8.8.8", "public"),
        ("1.1.1.1", "public"),
        ("2606:4700:4700::1111", "public"),
        ("registry.example", "invalid"),
    ],
)
def test_the_address_classifier_names_what_is_not_public(address, expected):
    assert address_class(address) == expected


@pytest.mark.parametrize("address", ["240.0.0.1", "255.255.255.255", "::7f00:1", "fec0::1", "192.0.2.1", "2001:db8::1"])
def test_reserved_and_documentation_addresses_are_not_public(address):
    assert address_class(address) != "public"


def test_the_routes_own_host_may_be_dialed_on_any_port_and_at_any_address():
    policy = DialPolicy("http://registry.internal:5000")
    assert policy.refusal("REGISTRY.internal.", "10.1.2.3") is None
    policy.check_url("https://registry.internal:8443/token")  # no raise


def test_another_host_may_be_dialed_only_at_public_or_allowed_addresses():
    policy = DialPolicy("http://127.0.0.1:5000", (ipaddress.ip_network("10.20.0.0/16"),))
    assert policy.refusal("cdn.example", "8.8.8.8") is None
    assert policy.refusal("cdn.example", "10.20.3.4") is None
    assert policy.refusal("cdn.example", "::ffff:10.20.3.4") is None
    assert policy.refusal("cdn.example", "10.21.0.1") == "private"
    assert policy.refusal("127.0.0.2", "127.0.0.2") == "loopback"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://[::ffff:127.0.0.1]:80/x", "loopback"),
        ("http://[fd00::1]/x", "private"),
        ("file:///etc/passwd", "not an http(s) URL"),
    ],
)
def test_an_address_literal_or_a_non_http_url_is_refused_before_any_request(url, reason):
    with pytest.raises(DialRefused) as refused:
        DialPolicy("https://registry.example").check_url(url)
    assert refused.value.reason == reason


# -- the remote client, with a fake remote and an injected resolver ----------------------------------------------


class AnswerEveryNameWithLoopback(AbstractResolver):
    """A resolver that answers every name (registry.example, auth.example, cdn.example) with 127.0.0.1."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        pass


class FakeRemote:
    """On 127.0.0.1: ``/v2/`` asks for a token at ``http://<realm_host>:PORT/token``; a blob GET redirects to
    ``http://<redirect_host>:PORT/storage``. Records every path it was asked for."""

    def __init__(self) -> None:
        self.port = free_port()
        self.realm_host = "registry.example"
        self.redirect_host = "registry.example"
        self.paths: list[str] = []
        remote = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                remote.paths.append(self.path.partition("?")[0])
                status, headers, body = remote.answer(self.path.partition("?")[0], self.headers.get("Authorization"))
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        if path == "/token":
            return 200, {}, orjson.dumps({"token": "granted", "expires_in": 300})
        if path == "/storage":
            return 200, {}, b"internal bytes"
        if authorization != "Bearer granted":
            return 401, {"WWW-Authenticate": f'Bearer realm="http://{self.realm_host}:{self.port}/token",service="fake"'}, b""
        if path.startswith("/v2/team/app/blobs/"):
            return 307, {"Location": f"http://{self.redirect_host}:{self.port}/storage"}, b""
        return 200, {}, b"{}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_remote() -> Iterator[FakeRemote]:
    remote = FakeRemote()
    try:
        yield remote
    finally:
        remote.stop()


def _client(remote: FakeRemote, allowed: str = "") -> RemoteRegistry:
    settings = RemoteConfig(
        ns="fake.example", aliases=(), default=False, url=f"http://registry.example:{remote.port}", username="",
        password="", prefix="fake", tag_ttl=60.0, allowed_networks=(ipaddress.ip_network(allowed),) if allowed else (),
    )
    return RemoteRegistry(settings, resolver=AnswerEveryNameWithLoopback())


async def _read_blob(client: RemoteRegistry) -> bytes:
    await client.start()
    try:
        _, stream = await client.blob_range("team/app", DIGEST, 0, None)
        return b"".join([chunk async for chunk in stream])
    finally:
        await client.close()


def test_a_realm_whose_name_resolves_to_a_private_address_is_refused_without_dialing_it(fake_remote):
    fake_remote.realm_host = "auth.example"
    with pytest.raises(DialRefusedError):
        asyncio.run(_read_blob(_client(fake_remote)))
    assert "/token" not in fake_remote.paths


def test_a_realm_on_the_routes_own_host_is_asked_for_a_token(fake_remote):
    assert asyncio.run(_read_blob(_client(fake_remote))) == b"internal bytes"  # the route's host is trusted
    assert fake_remote.paths.count("/token") == 1


def test_a_redirect_to_a_name_that_resolves_to_a_private_address_is_refused_without_dialing_it(fake_remote):
    fake_remote.redirect_host = "cdn.example"
    with pytest.raises(DialRefusedError):
        asyncio.run(_read_blob(_client(fake_remote)))
    assert "/storage" not in fake_remote.paths


def test_a_redirect_into_allowed_networks_is_followed(fake_remote):
    fake_remote.redirect_host = "cdn.example"
    assert asyncio.run(_read_blob(_client(fake_remote, allowed="127.0.0.0/8"))) == b"internal bytes"


# -- the route setting -----------------------------------------------------------------------------------------

ROUTE = '[[upstream]]\nns = "q.example"\nurl = "https://q.example"\nprefix = "q"\n'


def test_allowed_networks_is_read_from_toml_and_from_the_environment(tmp_path):
    file = tmp_path / "mirror.toml"
    file.write_text(ROUTE + 'allowed_networks = ["10.20.0.0/16", "fd00:1::/64"]\n')
    assert [str(n) for n in load(file, environ={}).upstreams[0].allowed_networks] == ["10.20.0.0/16", "fd00:1::/64"]
    overridden = load(file, environ={"MIRROR_UPSTREAM_0_ALLOWED_NETWORKS": "192.168.7.0/24"}).upstreams[0]
    assert [str(n) for n in overridden.allowed_networks] == ["192.168.7.0/24"]
    file.write_text(ROUTE)
    assert load(file, environ={}).upstreams[0].allowed_networks == ()


@pytest.mark.parametrize("value", ['["10.20.0.5/16"]', '["intranet"]', '[7]'])
def test_a_bad_allowed_networks_value_names_its_key(tmp_path, value):
    file = tmp_path / "mirror.toml"
    file.write_text(ROUTE + f"allowed_networks = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load(file, environ={})
    assert raised.value.key == "upstream[0].allowed_networks"
