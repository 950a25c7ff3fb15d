"""Manifest pushes and deletes, written into the registry:2 layout exactly as registry:2 writes them.

A manifest is accepted only when every blob it references (config and layers; for an index, its child
manifests) is already linked in the repository, so a pull of it can never meet a missing blob.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from mirror import errors, layout
from mirror.cache.edge import EdgeCache
from mirror.mediatypes import (
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA2,
    MANIFEST_MAX_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    NotAManifest,
    manifest_media_type,
)
from mirror.reference import Digest, is_digest, parse_digest, parse_tag
from mirror.referrers.writer import ReferrersWriter
from mirror.upstream import BackendError, NotFound, Upstream

IMAGE_TYPES = {DOCKER_SCHEMA2, OCI_MANIFEST}
INDEX_TYPES = {DOCKER_MANIFEST_LIST, OCI_INDEX}
ACCEPTED_TYPES = IMAGE_TYPES | INDEX_TYPES


class Publisher:
    def __init__(self, upstream: Upstream, edge: EdgeCache, delete_enabled: bool) -> None:
        self._upstream = upstream
        self._edge = edge
        self._links = edge.links
        self.delete_enabled = delete_enabled
        self._referrers = ReferrersWriter(upstream, edge.referrers.changed)

    async def put_manifest(self, name: str, reference: str, content_type: str, data: bytes) -> tuple[Digest, str | None]:
        """Store a manifest under `reference` (tag or digest); returns its digest and its OCI subject, if any."""
        if len(data) > MANIFEST_MAX_SIZE:
            raise errors.RegistryError(errors.MANIFEST_INVALID, "manifest is larger than 4 MiB", status=413)
        digest = Digest("sha256", hashlib.sha256(data).hexdigest())
        tag = None
        if is_digest(reference):
            if parse_digest(reference) != digest:
                raise errors.RegistryError(
                    errors.DIGEST_INVALID, f"manifest hashes to {digest}, not {reference}", {"digest": reference}
                )
        else:
            tag = parse_tag(reference)
        document, media_type = _validate(data, content_type)
        await self._require_references(name, document, media_type)

        await self._write(layout.blob_data(digest), data)
        await self._write(layout.manifest_revision_link(name, digest), str(digest).encode())
        self._links.remember_link(name, "manifest", digest)
        self._edge.cache_manifest(digest, data)
        if tag is not None:
            await self._write(layout.tag_index_link(name, tag, digest), str(digest).encode())
            await self._write(layout.tag_current_link(name, tag), str(digest).encode())
            self._links.remember_tag(name, tag, digest)
        return digest, await self._referrers.record(name, digest, media_type, document, data)

    async def _require_references(self, name: str, document: dict[str, Any], media_type: str) -> None:
        if media_type in IMAGE_TYPES:
            config = document.get("config")
            if not isinstance(config, dict):
                raise errors.RegistryError(errors.MANIFEST_INVALID, "image manifest has no config descriptor")
            blobs = [config, *_descriptors(document, "layers")]
            for descriptor in blobs:
                if descriptor.get("urls"):
                    continue  # non-distributable layer: fetched from its URLs, not from this registry
                await self._require(name, "blob", descriptor, errors.MANIFEST_BLOB_UNKNOWN)
        else:
            for descriptor in _descriptors(document, "manifests"):
                await self._require(name, "manifest", descriptor, errors.MANIFEST_BLOB_UNKNOWN)

    async def _require(self, name: str, kind: str, descriptor: dict[str, Any], code: errors.ErrorCode) -> None:
        try:
            digest = parse_digest(str(descriptor.get("digest", "")))
        except errors.RegistryError:
            raise errors.RegistryError(
                errors.MANIFEST_INVALID, f"descriptor has an invalid digest {descriptor.get('digest')!r}"
            ) from None
        if not await self._links.is_linked(name, kind, digest):
            raise errors.RegistryError(code, f"{kind} {digest} is not in repository {name!r}; push it first", {"digest": str(digest)})

    async def delete_manifest(self, name: str, reference: str) -> None:
        """Remove a manifest revision (and the tags pointing at it) from `name`, as registry:2 does."""
        self._require_delete()
        if not is_digest(reference):
            parse_tag(reference)
            raise errors.RegistryError(errors.UNSUPPORTED, "delete a manifest by digest; registry:2 cannot delete by tag")
        digest = parse_digest(reference)
        if not await self._links.is_linked(name, "manifest", digest):
            raise errors.RegistryError(errors.MANIFEST_UNKNOWN, f"manifest {digest} is not in repository {name!r}")
        for tag in await self._tags_pointing_at(name, digest):
            await self._remove_tree(layout.tag_directory(name, tag))  # registry:2's Untag: current link and index
            self._links.forget_tag(name, tag)
        await self._referrers.forget(name, digest)
        await self._remove(layout.manifest_revision_link(name, digest))
        self._links.forget_link(name, "manifest", digest)

    async def delete_blob(self, name: str, digest: Digest) -> None:
        """Unlink a blob from `name` (its data stays for garbage collection), as registry:2 does."""
        self._require_delete()
        if not await self._links.is_linked(name, "blob", digest):
            raise errors.RegistryError(errors.BLOB_UNKNOWN, f"blob {digest} is not in repository {name!r}")
        await self._remove(layout.layer_link(name, digest))
        self._links.forget_link(name, "blob", digest)

    async def _tags_pointing_at(self, name: str, digest: Digest) -> list[str]:
        try:
            tags = await self._edge.tags(name)
        except errors.RegistryError:
            return []
        pointing = []
        for tag in tags:
            try:
                current = await self._upstream.read(layout.tag_current_link(name, tag), 1024)
            except NotFound:
                continue
            except BackendError as error:
                raise errors.unavailable(error) from error
            if current.decode(errors="replace").strip() == str(digest):
                pointing.append(tag)
        return pointing

    def _require_delete(self) -> None:
        if not self.delete_enabled:
            raise errors.RegistryError(errors.UNSUPPORTED, "deletes are disabled on this registry ([storage] delete = false)")

    async def _write(self, key: str, data: bytes) -> None:
        try:
            await self._upstream.put(key, data)
        except (NotFound, BackendError) as error:
            raise errors.unavailable(error) from error

    async def _remove(self, key: str) -> None:
        try:
            await self._upstream.delete(key)
        except (NotFound, BackendError) as error:
            raise errors.unavailable(error) from error

    async def _remove_tree(self, directory: str) -> None:
        try:
            await self._upstream.delete_tree(directory)
        except (NotFound, BackendError) as error:
            raise errors.unavailable(error) from error


def _validate(data: bytes, content_type: str) -> tuple[dict[str, Any], str]:
    """Parse and check a pushed manifest; its media type must be one we serve and agree with Content-Type."""
    try:
        detected = manifest_media_type(data)
    except NotAManifest as error:
        raise errors.RegistryError(errors.MANIFEST_INVALID, f"not a manifest: {error}") from None
    declared = content_type.split(";", 1)[0].strip().lower()
    if detected not in ACCEPTED_TYPES:
        raise errors.RegistryError(errors.MANIFEST_INVALID, f"manifests of type {detected} are not accepted")
    document = orjson.loads(data)
    if declared and declared in ACCEPTED_TYPES and declared != detected:
        raise errors.RegistryError(
            errors.MANIFEST_INVALID, f"Content-Type {declared} does not match the manifest's media type {detected}"
        )
    if declared and declared not in ACCEPTED_TYPES and declared != "application/json":
        raise errors.RegistryError(errors.MANIFEST_INVALID, f"unsupported manifest media type {declared!r}")
    return document, detected


def _descriptors(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = document.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise errors.RegistryError(errors.MANIFEST_INVALID, f"{key} must be a list of descriptors")
    return items
