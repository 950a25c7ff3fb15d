"""The one digest check (`mirror.digests`): every layer that takes bytes under a digest asks it."""

import hashlib

import pytest

from mirror import digests
from mirror.reference import Digest

DATA = b"the bytes a digest names"
SHA256 = Digest("sha256", hashlib.sha256(DATA).hexdigest())
SHA512 = Digest("sha512", hashlib.sha512(DATA).hexdigest())


@pytest.mark.parametrize("digest", [SHA256, SHA512], ids=["sha256", "sha512"])
def test_bytes_that_hash_to_their_digest_pass(digest):
    digests.check_bytes(digest, DATA)


def test_a_mismatch_names_the_digest_asked_for_and_the_one_found():
    with pytest.raises(digests.DigestMismatch) as raised:
        digests.check_bytes(SHA256, DATA + b"!", "backend content")
    assert raised.value.digest == SHA256
    assert raised.value.actual == Digest("sha256", hashlib.sha256(DATA + b"!").hexdigest())
    assert str(raised.value) == f"backend content hashes to {raised.value.actual}, not {SHA256}"


def test_a_running_hash_fed_in_pieces_checks_like_the_whole():
    hasher = digests.hasher(SHA512, DATA[:5])
    hasher.update(DATA[5:])
    digests.check(SHA512, hasher.hexdigest())
    with pytest.raises(digests.DigestMismatch):
        digests.check(SHA256, hasher.hexdigest())  # a hash of another algorithm never matches
