"""Manifest pushes and deletes, written into the registry:2 layout exactly as registry:2 writes them.

A manifest is accepted only when every blob it references (config and layers; for an index, its child
manifests) is already linked in the repository, so a pull of it can never meet a missing blob. Only a
non-distributable ("foreign") layer that names its `urls` is exempt, exactly as registry:2 decides it. The whole
document is checked before anything is written.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from mirror import layout
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
from mirror.push.notices import CacheNotices, NoEvents, PushEvents
from mirror.referrers.writer import ReferrersWriter
from mirror.upstream import BackendError, NotFound, Upstream
from mirror.domain import Invalid, Oversized, Problem, Unavailable, Unknown, Unsupported

IMAGE_TYPES = {DOCKER_SCHEMA2, OCI_MANIFEST}
INDEX_TYPES = {DOCKER_MANIFEST_LIST, OCI_INDEX}
ACCEPTED_TYPES = IMAGE_TYPES | INDEX_TYPES
# Layers a client downloads from their `urls`, not from the registry (registry:2 does not require them linked).
FOREIGN_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}
LINK_MAX_SIZE = 1024


class Publisher:
    def __init__(self, upstream: Upstream, notices: CacheNotices, delete_enabled: bool, events: PushEvents | None = None) -> None:
        self._upstream = upstream
        self._notices = notices
        self._events = events or NoEvents()
        self.delete_enabled = delete_enabled
        self._referrers = ReferrersWriter(upstream, notices.referrers_changed)

    async def put_manifest(self, name: str, reference: str, content_type: str, data: bytes) -> tuple[Digest, str | None]:
        """Store a manifest under `reference` (tag or digest); returns its digest and its OCI subject, if any."""
        if len(data) > MANIFEST_MAX_SIZE:
            raise Oversized("manifest", "manifest is larger than 4 MiB")
        digest = Digest("sha256", hashlib.sha256(data).hexdigest())
        tag = None
        if is_digest(reference):
            if parse_digest(reference) != digest:
                raise Invalid("digest", f"manifest hashes to {digest}, not {reference}", {"digest": reference})
        else:
            tag = parse_tag(reference)
        document, media_type = _validate(data, content_type)
        required = _required_references(document, media_type)
        _subject(document)  # a subject must be a well-formed descriptor; the referrers index records it
        for kind, referenced in required:
            if not await self._notices.is_linked(name, kind, referenced):
                raise Invalid(
                    "reference",
                    f"{kind} {referenced} is not in repository {name!r}; push it first",
                    {"digest": str(referenced)},
                )

        with Unavailable.on(NotFound, BackendError):
            await self._upstream.put(layout.blob_data(digest), data)
            await self._upstream.put(layout.manifest_revision_link(name, digest), str(digest).encode())
        self._notices.linked(name, "manifest", digest)
        self._notices.manifest_published(digest, data)
        if tag is not None:
            with Unavailable.on(NotFound, BackendError):
                await self._upstream.put(layout.tag_index_link(name, tag, digest), str(digest).encode())
                await self._upstream.put(layout.tag_current_link(name, tag), str(digest).encode())
            self._notices.tagged(name, tag, digest)
        subject = await self._referrers.record(name, digest, media_type, document, data)
        self._events.pushed(name, digest, media_type, len(data), tag)
        return digest, subject

    async def delete_manifest(self, name: str, reference: str) -> None:
        """Remove a manifest revision (and the tags pointing at it) from `name`, as registry:2 does."""
        self._require_delete()
        if not is_digest(reference):
            parse_tag(reference)
            raise Unsupported("delete a manifest by digest; registry:2 cannot delete by tag")
        digest = parse_digest(reference)
        if not await self._notices.is_linked(name, "manifest", digest):
            raise Unknown("manifest", f"manifest {digest} is not in repository {name!r}")
        for tag in await self._tags_pointing_at(name, digest):
            with Unavailable.on(NotFound, BackendError):  # registry:2's Untag: current link and index
                await self._upstream.delete_tree(layout.tag_directory(name, tag))
            self._notices.untagged(name, tag)
        await self._referrers.forget(name, digest)
        with Unavailable.on(NotFound, BackendError):
            await self._upstream.delete(layout.manifest_revision_link(name, digest))
        self._notices.unlinked(name, "manifest", digest)
        self._events.deleted(name, digest)

    async def delete_blob(self, name: str, digest: Digest) -> None:
        """Unlink a blob from `name` (its data stays for garbage collection), as registry:2 does."""
        self._require_delete()
        if not await self._notices.is_linked(name, "blob", digest):
            raise Unknown("blob", f"blob {digest} is not in repository {name!r}")
        with Unavailable.on(NotFound, BackendError):
            await self._upstream.delete(layout.layer_link(name, digest))
        self._notices.unlinked(name, "blob", digest)
        self._events.deleted(name, digest)

    async def _tags_pointing_at(self, name: str, digest: Digest) -> list[str]:
        try:
            tags = (await self._upstream.list(layout.tags_directory(name))).directories
        except BackendError as error:
            raise Unavailable.of(error) from error
        pointing = []
        for tag in tags:
            try:
                current = await self._upstream.read(layout.tag_current_link(name, tag), LINK_MAX_SIZE)
            except NotFound:
                continue
            except BackendError as error:
                raise Unavailable.of(error) from error
            if current.decode(errors="replace").strip() == str(digest):
                pointing.append(tag)
        return pointing

    def _require_delete(self) -> None:
        if not self.delete_enabled:
            raise Unsupported("deletes are disabled on this registry ([storage] delete = false)")



def _validate(data: bytes, content_type: str) -> tuple[dict[str, Any], str]:
    """Parse and check a pushed manifest; its media type must be one we serve and agree with Content-Type."""
    try:
        detected = manifest_media_type(data)
    except NotAManifest as error:
        raise Invalid("manifest", f"not a manifest: {error}") from None
    declared = content_type.split(";", 1)[0].strip().lower()
    if detected not in ACCEPTED_TYPES:
        raise Invalid("manifest", f"manifests of type {detected} are not accepted")
    document = orjson.loads(data)
    if declared and declared in ACCEPTED_TYPES and declared != detected:
        raise Invalid("manifest", f"Content-Type {declared} does not match the manifest's media type {detected}")
    if declared and declared not in ACCEPTED_TYPES and declared != "application/json":
        raise Invalid("manifest", f"unsupported manifest media type {declared!r}")
    return document, detected


def _required_references(document: dict[str, Any], media_type: str) -> list[tuple[str, Digest]]:
    """Check every descriptor of `document` and return what must be linked in the repository, as registry:2's
    manifest handlers decide it: every blob and child manifest, except a foreign layer that names its URLs."""
    if media_type in INDEX_TYPES:
        return [("manifest", _descriptor(item, "manifests")) for item in _list(document, "manifests")]
    config = document.get("config")
    if not isinstance(config, dict):
        raise Invalid("manifest", "image manifest has no config descriptor")
    required = [("blob", _descriptor(config, "config"))]
    if config.get("urls") is not None:
        raise Invalid("manifest", "the config descriptor must not have urls")
    for item in _list(document, "layers"):
        digest = _descriptor(item, "layers")
        urls = item.get("urls")
        foreign = item.get("mediaType") in FOREIGN_LAYER_TYPES
        if urls is not None and not foreign:
            raise Invalid("manifest", f"layer {digest} has urls but is not a non-distributable layer")
        if foreign and urls:
            continue  # downloaded from its URLs, not from this registry
        required.append(("blob", digest))
    return required


def _subject(document: dict[str, Any]) -> Digest | None:
    subject = document.get("subject")
    if subject is None:
        return None
    if not isinstance(subject, dict):
        raise Invalid("manifest", "subject must be a descriptor")
    return _descriptor(subject, "subject")


def _descriptor(item: Any, where: str) -> Digest:
    """A descriptor's digest, after checking its shape; MANIFEST_INVALID naming `where` otherwise."""
    if not isinstance(item, dict):
        raise Invalid("manifest", f"{where}: a descriptor must be an object")
    raw = item.get("digest")
    if not isinstance(raw, str):
        raise Invalid("manifest", f"{where}: descriptor digest must be a string, got {raw!r:.80}")
    try:
        digest = parse_digest(raw)
    except Problem:
        raise Invalid("manifest", f"{where}: descriptor has an invalid digest {raw!r:.100}") from None
    size = item.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise Invalid("manifest", f"{where}: descriptor size must be a whole number, got {size!r:.40}")
    media_type = item.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise Invalid("manifest", f"{where}: descriptor mediaType must be a string")
    urls = item.get("urls")
    if urls is not None and (
        not isinstance(urls, list) or not all(isinstance(url, str) and url.startswith(("http://", "https://")) for url in urls)
    ):
        raise Invalid("manifest", f"{where}: descriptor urls must be a list of http(s) URLs")
    return digest


def _list(document: dict[str, Any], key: str) -> list[Any]:
    items = document.get(key) or []
    if not isinstance(items, list):
        raise Invalid("manifest", f"{key} must be a list of descriptors")
    return items
