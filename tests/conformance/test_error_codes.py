"""Error bodies carry only the spec's codes (spec.md "Error Codes": a 4xx JSON body's `code` MUST be one of its
list; the body MAY also be in another format, as registry:2's plain-text 404 for an unknown route is)."""

from __future__ import annotations

import httpx
import pytest

from mirror.errors import SPEC_CODES
from tests.conformance.conftest import Target, upload_blob
from tests.conformance.test_pull_and_push import OCI_MANIFEST, _push_image

NON_SPEC_CODES = pytest.mark.xfail(strict=True, raises=AssertionError, reason="registry:2 2.8 answers with a code outside the spec's list")


def _codes(response) -> list[str]:
    """The error codes of a JSON error body; none for a body in another format."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return []
    return [error["code"] for error in response.json()["errors"]]


def test_an_unknown_route_is_404_with_spec_codes_only(target: Target):
    with target.client() as client:
        response = client.get(f"/v2/{target.repository('routes')}/no-such-endpoint")
        assert response.status_code == 404
        assert set(_codes(response)) <= SPEC_CODES


BROKEN_RANGE = pytest.mark.xfail(
    strict=True,
    raises=httpx.RemoteProtocolError,
    reason="registry:2 2.8 on S3 answers an out-of-blob Range with the whole blob's Content-Length and no body",
)


@pytest.mark.parametrize("target", ["edge", pytest.param("registry2", marks=BROKEN_RANGE)], indirect=True)
def test_an_unsatisfiable_blob_range_is_416_with_spec_codes_only(target: Target):
    with target.client() as client:
        repository = target.repository("range")
        digest = upload_blob(client, repository, b"ten bytes!")
        response = client.get(f"/v2/{repository}/blobs/{digest}", headers={"Range": "bytes=100-200"})
        assert response.status_code == 416
        assert set(_codes(response)) <= SPEC_CODES


@pytest.mark.parametrize("target", ["edge", pytest.param("registry2", marks=NON_SPEC_CODES)], indirect=True)
def test_an_invalid_page_size_is_400_with_spec_codes_only(target: Target):
    with target.client() as client:
        response = client.get("/v2/_catalog?n=-1")
        assert response.status_code == 400
        assert _codes(response) and set(_codes(response)) <= SPEC_CODES


def test_a_push_to_a_malformed_tag_is_refused_with_spec_codes_only(target: Target):
    with target.client() as client:
        repository = target.repository("bad-tag")
        _push_image(client, repository, "v1")
        response = client.put(f"/v2/{repository}/manifests/.bad", content=b"{}", headers={"Content-Type": OCI_MANIFEST})
        assert 400 <= response.status_code < 500
        assert set(_codes(response)) <= SPEC_CODES
