import pytest

from mirror import errors
from mirror.api.failures import registry_error
from mirror.domain import Problem
from mirror.reference import Digest, is_digest, parse_digest, parse_name, parse_tag

HEX = "a" * 64


@pytest.mark.parametrize("name", ["library/ubuntu", "a", "team/app", "a.b_c__d---e/f0", "x/" * 10 + "y"])
def test_valid_names_are_accepted(name):
    assert parse_name(name) == name


@pytest.mark.parametrize("name", ["Team/app", "a//b", "/a", "a/", "-a", "a-", "a..b", "a___b", "a b", ""])
def test_invalid_names_raise_name_invalid(name):
    with pytest.raises(Problem) as raised:
        parse_name(name)
    assert registry_error(raised.value).code is errors.NAME_INVALID
    assert registry_error(raised.value).status == 400


def test_name_longer_than_255_characters_is_rejected():
    with pytest.raises(Problem) as raised:
        parse_name("a" * 256)
    assert registry_error(raised.value).code is errors.NAME_INVALID
    assert "255" in registry_error(raised.value).message


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A-b_c.d", "a" * 128])
def test_valid_tags_are_accepted(tag):
    assert parse_tag(tag) == tag


@pytest.mark.parametrize("tag", [".hidden", "-dash", "a" * 129, "a/b", "a:b", ""])
def test_invalid_tags_raise_tag_invalid(tag):
    with pytest.raises(Problem) as raised:
        parse_tag(tag)
    assert registry_error(raised.value).code is errors.TAG_INVALID


def test_sha256_digest_parses_into_algorithm_and_hex():
    assert parse_digest(f"sha256:{HEX}") == Digest("sha256", HEX)
    assert str(parse_digest(f"sha256:{HEX}")) == f"sha256:{HEX}"


def test_sha512_digest_is_supported():
    assert parse_digest("sha512:" + "b" * 128).algorithm == "sha512"


@pytest.mark.parametrize(
    "text",
    ["sha256:" + "a" * 63, "sha256:" + "A" * 64, "md5:" + "a" * 32, "sha256", "sha256:", ":abc", "sha256:" + "g" * 64],
)
def test_bad_digests_raise_digest_invalid(text):
    with pytest.raises(Problem) as raised:
        parse_digest(text)
    assert registry_error(raised.value).code is errors.DIGEST_INVALID


def test_a_reference_with_a_colon_is_a_digest():
    assert is_digest(f"sha256:{HEX}")
    assert not is_digest("latest")
