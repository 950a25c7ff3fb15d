"""``[peers]`` settings: the contract's names, env overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from mirror.config import ConfigError, load

SECRET = "0123456789abcdef-secret"


def test_peers_are_off_by_default():
    assert not load(None, environ={}).peers.enabled


def test_static_addresses_from_the_environment_include_this_edge():
    settings = load(None, environ={"MIRROR_HTTP_ADDR": "10.0.0.1:5000", "MIRROR_PEERS_ADDRESSES": "10.0.0.1:5000,10.0.0.2:5000",
                                   "MIRROR_PEERS_SECRET": SECRET}).peers
    assert settings.enabled
    assert settings.addresses == ("10.0.0.1:5000", "10.0.0.2:5000")
    assert settings.self_address == "10.0.0.1:5000"


def test_dns_with_port_refresh_and_self():
    settings = load(None, environ={"MIRROR_PEERS_DNS": "edges.mirror.svc", "MIRROR_PEERS_PORT": "5001", "MIRROR_PEERS_REFRESH": "10s",
                                   "MIRROR_PEERS_SECRET": SECRET, "MIRROR_PEERS_SELF": "10.1.2.3:5001"}).peers
    assert (settings.dns, settings.port, settings.refresh, settings.self_address) == ("edges.mirror.svc", 5001, 10.0, "10.1.2.3:5001")


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"MIRROR_HTTP_ADDR": "10.0.0.1:5000", "MIRROR_PEERS_ADDRESSES": "10.0.0.1:5000,10.0.0.2:5000"}, "peers.secret"),
        ({"MIRROR_PEERS_DNS": "edges", "MIRROR_PEERS_SECRET": SECRET}, "peers.self"),
        ({"MIRROR_HTTP_ADDR": "10.0.0.9:5000", "MIRROR_PEERS_ADDRESSES": "10.0.0.1:5000", "MIRROR_PEERS_SECRET": SECRET}, "peers.self"),
        ({"MIRROR_PEERS_ADDRESSES": "nonsense", "MIRROR_PEERS_SECRET": SECRET}, "peers.addresses"),
        ({"MIRROR_PEERS_DNS": "edges", "MIRROR_PEERS_ADDRESSES": "10.0.0.1:5000", "MIRROR_PEERS_SECRET": SECRET}, "peers.dns"),
        ({"MIRROR_PEERS_DNS": "edges", "MIRROR_PEERS_PORT": "0", "MIRROR_PEERS_SECRET": SECRET, "MIRROR_PEERS_SELF": "10.0.0.1:5000"}, "peers.port"),
        ({"MIRROR_PEERS_DNS": "edges", "MIRROR_PEERS_REFRESH": "soon", "MIRROR_PEERS_SECRET": SECRET, "MIRROR_PEERS_SELF": "10.0.0.1:5000"}, "peers.refresh"),
    ],
)
def test_bad_peer_settings_name_their_key(environ, key):
    with pytest.raises(ConfigError) as raised:
        load(None, environ=environ)
    assert raised.value.key == key
