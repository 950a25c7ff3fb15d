"""Manifest media types, and how registry:2 tells which one a stored manifest is."""

from __future__ import annotations

from mirror import jsondoc

DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

MANIFEST_TYPES = (DOCKER_SCHEMA2, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1)

# registry:2 caps manifests at 4 MiB.
MANIFEST_MAX_SIZE = 4 * 1024 * 1024


class NotAManifest(ValueError):
    """The bytes are not a manifest registry:2 would serve."""


def manifest_media_type(content: bytes) -> str:
    """The media type of a stored manifest, decided as registry:2 2.8 decides it.

    schemaVersion 1 is a (signed) schema1 manifest; schemaVersion 2 carries its ``mediaType``; an OCI manifest
    or index may omit it, and then one with a ``manifests`` list is an index.
    """
    document = jsondoc.load(content, dict, NotAManifest, "not a JSON object")
    version = document.get("schemaVersion")
    if version == 1:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in document else DOCKER_SCHEMA1
    if version != 2:
        raise NotAManifest(f"unsupported schemaVersion {version!r}")
    media_type = document.get("mediaType") or ""
    if media_type in (DOCKER_SCHEMA2, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX):
        return media_type
    if media_type:
        raise NotAManifest(f"unsupported mediaType {media_type!r}")
    return OCI_INDEX if isinstance(document.get("manifests"), list) else OCI_MANIFEST
