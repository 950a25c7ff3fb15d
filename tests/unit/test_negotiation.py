import pytest

from mirror import errors
from mirror.api.negotiation import accepted_types, check_acceptable
from mirror.mediatypes import DOCKER_MANIFEST_LIST, DOCKER_SCHEMA2, OCI_INDEX, OCI_MANIFEST


def test_repeated_accept_headers_and_comma_lists_are_all_read():
    accepted = accepted_types([f"{DOCKER_SCHEMA2}, {OCI_MANIFEST};q=0.9", OCI_INDEX])
    assert accepted == {DOCKER_SCHEMA2, OCI_MANIFEST, OCI_INDEX}


def test_oci_manifest_is_served_when_accepted():
    check_acceptable(OCI_MANIFEST, {OCI_MANIFEST})


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, OCI_INDEX])
def test_oci_types_not_accepted_are_manifest_unknown(media_type):
    with pytest.raises(errors.RegistryError) as raised:
        check_acceptable(media_type, {DOCKER_SCHEMA2})
    assert raised.value.code is errors.MANIFEST_UNKNOWN
    assert raised.value.status == 404


def test_wildcard_accepts_oci_types():
    check_acceptable(OCI_INDEX, {"*/*"})


def test_docker_types_are_served_as_stored_whatever_the_accept_header():
    check_acceptable(DOCKER_SCHEMA2, set())
    check_acceptable(DOCKER_MANIFEST_LIST, {"application/json"})
