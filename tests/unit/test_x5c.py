"""x5c chains are checked at the time of each request, as registry:2 checks them, not at the time the edge started."""

from __future__ import annotations

import datetime

import pytest

from mirror.auth.x5c import ChainVerifier, UntrustedChain
from tests.support.tokens import TestCA


def test_a_chain_is_checked_at_the_time_of_the_request_not_when_the_verifier_was_made():
    ca = TestCA()
    signer = ca.leaf()  # valid from an hour ago for two days
    moment = [datetime.datetime.now(datetime.timezone.utc)]
    chains = ChainVerifier([ca.certificate], clock=lambda: moment[0])
    chains.verify(signer.certificate, [])
    moment[0] += datetime.timedelta(days=3)
    with pytest.raises(UntrustedChain):
        chains.verify(signer.certificate, [])
