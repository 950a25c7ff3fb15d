"""Pure logic of the remote tier: which realm may see credentials, challenges, routes, config, key meanings."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror import layout
from mirror.api.admin import ACTIVITY_NAMES, Activity
from mirror.config import ConfigError, load
from mirror.reference import parse_digest, parse_image
from mirror.upstream.filesystem import FilesystemUpstream
from mirror.upstream.dialing import parse_challenge, realm_may_see_credentials
from mirror.upstream.tiered import TieredUpstream

DIGEST = parse_digest("sha256:" + "ab" * 32)

HUB = """
[[upstream]]
ns = "docker.io"
default = true
url = "https://registry-1.docker.io"
prefix = "dockerhub"
tag_ttl = "5m"

[[upstream]]
ns = "ghcr.io"
url = "https://ghcr.io"
prefix = "ghcr"
username = "me"
password = "from-file"
"""


@pytest.mark.parametrize(
    ("remote", "realm", "allowed"),
    [
        ("registry-1.docker.io", "registry-1.docker.io", True),
        ("registry-1.docker.io", "auth.docker.io", True),
        ("registry-1.docker.io", "docker.io.evil.example", False),
        ("registry-1.docker.io", "evil.example", False),
        ("a.example.co.uk", "b.other.co.uk", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
    ],
)
def test_credentials_go_only_to_a_realm_on_the_same_host_or_registrable_domain(remote, realm, allowed):
    assert realm_may_see_credentials(remote, realm) is allowed


def test_a_bearer_challenge_is_parsed_into_its_parameters():
    scheme, params = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull"}


def test_a_challenge_with_unquoted_parameters_is_parsed_as_rfc_9110_allows():
    scheme, params = parse_challenge('Bearer realm=https://auth.example/token, service=registry.example,scope="repository:team/app:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:team/app:pull,push"}


def test_an_empty_challenge_has_no_scheme_and_no_parameters():
    assert parse_challenge("") == ("", {})


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    file = tmp_path / "mirror.toml"
    file.write_text(text)
    return load(file, environ=environ or {})


def test_upstream_tables_parse_with_docker_hub_aliases_and_env_overrides(tmp_path):
    settings = _load(tmp_path, HUB, {"MIRROR_UPSTREAM_1_PASSWORD": "from-env"})
    hub, ghcr = settings.upstreams
    assert hub.aliases == ("index.docker.io", "registry-1.docker.io")
    assert (hub.default, hub.prefix, hub.tag_ttl) == (True, "dockerhub", 300)
    assert ghcr.password == "from-env"
    assert "from-env" not in repr(ghcr)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[[upstream]]\nns = "index.docker.io"\nurl = "https://x.example"\nprefix = "x"\n', "upstream[2].ns"),
        ('[[upstream]]\nns = "q.example"\ndefault = true\nurl = "https://q.example"\nprefix = "q"\n', "upstream[2].default"),
        ('[[upstream]]\nns = "q.example"\nurl = "ftp://q.example"\nprefix = "q"\n', "upstream[2].url"),
        ('[[upstream]]\nns = "q.example"\nurl = "https://q.example"\nprefix = "Bad Prefix"\n', "upstream[2].prefix"),
        ('[[upstream]]\nns = "q.example"\nurl = "https://q.example"\nprefix = "dockerhub/q"\n', "upstream[2].prefix"),
        ('[[upstream]]\nns = "q.example"\nurl = "https://q.example"\nprefix = "q"\nusername = "u"\n', "upstream[2].password"),
        ('[[upstream]]\nns = "q.example"\nurl = "https://q.example"\nprefix = "q"\ncolour = "red"\n', "upstream[2].colour"),
        ('[[upstream]]\nns = "q.example"\nurl = "https://q.example"\nprefix = "q"\ntag_ttl = "soon"\n', "upstream[2].tag_ttl"),
    ],
)
def test_a_bad_upstream_table_names_its_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, HUB + extra)
    assert raised.value.key == key


def test_the_admin_endpoint_needs_a_token_when_enabled(tmp_path):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, "[admin]\nenabled = true\n")
    assert raised.value.key == "admin.token"


def test_ns_picks_the_route_and_an_unknown_ns_reads_the_bucket_as_is(tmp_path):
    tiers = TieredUpstream(FilesystemUpstream(tmp_path), list(_load(tmp_path, HUB).upstreams))
    assert tiers.bucket_name("library/alpine", None) == "dockerhub/library/alpine"
    assert tiers.bucket_name("library/alpine", "registry-1.docker.io") == "dockerhub/library/alpine"
    assert tiers.bucket_name("me/tool", "GHCR.io") == "ghcr/me/tool"
    assert tiers.bucket_name("team/app", "registry.example") == "team/app"
    route, remote_name = tiers.split("dockerhub/library/alpine")
    assert (route.ns, remote_name) == ("docker.io", "library/alpine")
    assert tiers.split("dockerhubx/alpine") is None


def test_read_keys_carry_what_they_name_so_the_tier_routes_on_fields():
    layer, revision = layout.layer_link("a/b", DIGEST), layout.manifest_revision_link("a", DIGEST)
    tag = layout.tag_current_link("a/b/c", "v1.2")
    assert isinstance(layer, layout.LayerLinkKey) and (layer.repository, layer.digest) == ("a/b", DIGEST)
    assert isinstance(revision, layout.RevisionLinkKey) and (revision.repository, revision.digest) == ("a", DIGEST)
    assert isinstance(tag, layout.TagLinkKey) and (tag.repository, tag.tag) == ("a/b/c", "v1.2")
    assert type(layout.tag_index_link("a", "t", DIGEST)) is str


@pytest.mark.parametrize(
    ("text", "host", "name", "tag"),
    [
        ("alpine", None, "alpine", "latest"),
        ("docker.io/alpine:3.19", "docker.io", "library/alpine", "3.19"),
        ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1"),
        ("localhost/app", "localhost", "app", "latest"),
    ],
)
def test_image_references_parse_as_docker_reads_them(text, host, name, tag):
    image = parse_image(text)
    assert (image.host, image.name, image.tag, image.digest) == (host, name, tag, None)


def test_per_repository_activity_stays_bounded_and_keeps_the_busiest():
    activity = Activity()
    for _ in range(5):
        activity.request("busy/repo")
    for number in range(ACTIVITY_NAMES + 10):
        activity.request(f"once/{number}")
    assert len(activity.requests) <= ACTIVITY_NAMES
    assert activity.top(1)[0]["name"] == "busy/repo"
