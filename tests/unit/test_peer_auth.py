"""Peer request signatures: right secret and request within the time window, or refused."""

from __future__ import annotations

from mirror.peers import auth

SECRET = "a-region-secret-of-some-length"
PATH = "/_peer/blobs/sha256:" + "ab" * 32


def test_a_signed_request_verifies():
    header = auth.sign(SECRET, "GET", PATH, "bytes=0-99", now=1000)
    assert auth.verify(SECRET, header, "GET", PATH, "bytes=0-99", now=1010)


def test_another_secret_is_refused():
    header = auth.sign("another-secret-of-some-length", "GET", PATH, "bytes=0-99", now=1000)
    assert not auth.verify(SECRET, header, "GET", PATH, "bytes=0-99", now=1000)


def test_a_signature_is_bound_to_its_path_and_range():
    header = auth.sign(SECRET, "GET", PATH, "bytes=0-99", now=1000)
    assert not auth.verify(SECRET, header, "GET", PATH.replace("ab", "cd"), "bytes=0-99", now=1000)
    assert not auth.verify(SECRET, header, "GET", PATH, "bytes=0-", now=1000)


def test_an_old_signature_is_refused():
    header = auth.sign(SECRET, "GET", PATH, "", now=1000)
    assert not auth.verify(SECRET, header, "GET", PATH, "", now=1000 + auth.MAX_SKEW + 1)


def test_garbage_and_missing_headers_are_refused_without_error():
    for header in (None, "", "Bearer x", "EdgePeer", "EdgePeer x:y", "EdgePeer 1000:\u00e9\u00e9", "EdgePeer 99999999999999:00"):
        assert not auth.verify(SECRET, header, "GET", PATH, "", now=1000)


def test_no_secret_verifies_nothing():
    header = auth.sign("", "GET", PATH, "", now=1000)
    assert not auth.verify("", header, "GET", PATH, "", now=1000)
