import orjson
import pytest

from mirror.mediatypes import (
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA2,
    OCI_INDEX,
    OCI_MANIFEST,
    NotAManifest,
    manifest_media_type,
)


def test_declared_media_type_is_used():
    assert manifest_media_type(orjson.dumps({"schemaVersion": 2, "mediaType": DOCKER_SCHEMA2})) == DOCKER_SCHEMA2


def test_oci_manifest_without_media_type_is_detected():
    assert manifest_media_type(orjson.dumps({"schemaVersion": 2, "config": {}, "layers": []})) == OCI_MANIFEST


def test_oci_index_without_media_type_is_detected_by_its_manifests_list():
    assert manifest_media_type(orjson.dumps({"schemaVersion": 2, "manifests": []})) == OCI_INDEX


def test_signed_schema1_is_prettyjws():
    assert manifest_media_type(orjson.dumps({"schemaVersion": 1, "signatures": []})) == DOCKER_SCHEMA1_SIGNED


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"schemaVersion": 3}', b'{"schemaVersion": 2, "mediaType": "text/html"}'])
def test_non_manifests_are_rejected(content):
    with pytest.raises(NotAManifest):
        manifest_media_type(content)
