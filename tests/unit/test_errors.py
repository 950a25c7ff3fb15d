"""Every 4xx error the mirror can answer with carries a code from the spec's list (spec.md "Error Codes")."""

from __future__ import annotations

import orjson
import pytest

from mirror import errors

CODES = [value for value in vars(errors).values() if isinstance(value, errors.ErrorCode)]


@pytest.mark.parametrize("code", [code for code in CODES if code.status < 500], ids=lambda code: code.message)
def test_every_client_error_uses_a_spec_code(code: errors.ErrorCode):
    assert code.code in errors.SPEC_CODES


def test_a_malformed_reference_is_manifest_unknown_404():
    assert (errors.TAG_INVALID.code, errors.TAG_INVALID.status) == ("MANIFEST_UNKNOWN", 404)


def test_error_body_keeps_the_message_under_a_spec_code():
    body = orjson.loads(errors.RegistryError(errors.NOT_FOUND, "no endpoint at /v2/x/nope").body())
    assert body == {"errors": [{"code": "UNSUPPORTED", "message": "no endpoint at /v2/x/nope"}]}
