"""Every storage key of the docker/distribution (registry:2) storage layout. No other module builds a key.

The layout, as registry:2 writes it under its storage root directory::

    <rootdirectory>/docker/registry/v2/
    ├── blobs/
    │   └── <algorithm>/<first two hex>/<hex>/data           the content of every blob and manifest
    └── repositories/
        └── <name>/                                           name may contain '/' (team/app)
            ├── _layers/<algorithm>/<hex>/link                 blob is part of this repository
            ├── _manifests/
            │   ├── revisions/<algorithm>/<hex>/link           manifest is part of this repository
            │   └── tags/<tag>/
            │       ├── current/link                           the digest the tag points at now
            │       └── index/<algorithm>/<hex>/link           every digest the tag has pointed at
            ├── _referrers/<algorithm>/<hex>/                  edge only (registry:2 skips `_` directories): the
            │   └── <algorithm>-<hex>                          manifests whose `subject` is <algorithm>:<hex>, one
            │                                                  object each holding its referrers descriptor (JSON)
            └── _uploads/<uuid>/                               one upload in progress; removed whole when done
                ├── data                                       bytes of an upload in progress
                ├── startedat                                  RFC 3339 time the upload began
                ├── hashstates/<algorithm>/<offset>            resumable hash state (registry:2 only)
                ├── state                                      edge only: multipart id, parts, offset (JSON)
                └── tails/<nonce>                              edge only: bytes not yet a full part; a new key
                                                               per chunk (its state's nonce), so a chunk that
                                                               fails half-way or races another never spoils
                                                               the saved state

Beside it the edge keeps one kind of object of its own, outside registry:2's tree::

    <rootdirectory>/edge-mirror/writeback/<algorithm>/<hex>    "this edge is writing this blob back" (JSON)

A link file holds the text ``<algorithm>:<hex>`` of the digest it points at.
The ``_referrers`` index is written by edges on manifest PUT/DELETE and rebuilt by ``edge-mirror reindex``; one
object per (subject, referrer) pair, so concurrent pushes from several edges never overwrite each other.
Keys here are relative to the storage root; `rooted` prefixes a backend's root directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mirror.errors import RegistryError
from mirror.reference import Digest, parse_digest

PREFIX = "docker/registry/v2"
REPOSITORIES = f"{PREFIX}/repositories"
WRITEBACK = "edge-mirror/writeback"


def rooted(rootdirectory: str, key: str) -> str:
    """Prefix `key` with a backend's root directory (registry:2's ``rootdirectory``), if any."""
    root = rootdirectory.strip("/")
    return f"{root}/{key}" if root else key


def blob_data(digest: Digest) -> str:
    return f"{PREFIX}/blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data"


def digest_of_blob_data(key: str) -> Digest | None:
    """The digest whose content `key` is (the inverse of `blob_data`), or None for any other key."""
    parts = key.split("/")
    if len(parts) != 8 or "/".join(parts[:4]) != f"{PREFIX}/blobs" or parts[7] != "data":
        return None
    algorithm, prefix, encoded = parts[4], parts[5], parts[6]
    if encoded[:2] != prefix:
        return None
    try:
        return parse_digest(f"{algorithm}:{encoded}")
    except RegistryError:
        return None


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{digest.algorithm}/{digest.hex}/link"


def manifest_revision_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{digest.algorithm}/{digest.hex}/link"


def manifest_revisions_directory(name: str, algorithm: str) -> str:
    """Every manifest revision of `name` under one digest algorithm: its sub-directories are the hex digests."""
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{algorithm}"


def referrers_root(name: str) -> str:
    """The edge's referrers index of `name`: sub-directories per subject algorithm, then per subject hex."""
    return f"{REPOSITORIES}/{name}/_referrers"


def referrers_subjects_directory(name: str, algorithm: str) -> str:
    """The subjects of one digest algorithm that `name` has referrers of: its sub-directories are hex digests."""
    return f"{REPOSITORIES}/{name}/_referrers/{algorithm}"


def referrers_directory(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_entry(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrers_directory(name, subject)}/{referrer.algorithm}-{referrer.hex}"


def referrer_of_entry(file_name: str) -> Digest | None:
    """The referrer digest an entry of `referrers_directory` is named after; None for a name that is not one."""
    algorithm, dash, encoded = file_name.partition("-")
    if not dash:
        return None
    try:
        return parse_digest(f"{algorithm}:{encoded}")
    except RegistryError:
        return None


def tags_directory(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_directory(name: str, tag: str) -> str:
    """Everything of one tag (current link and index); registry:2 removes it whole to untag."""
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/current/link"


def tag_index_link(name: str, tag: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/index/{digest.algorithm}/{digest.hex}/link"


def upload_directory(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/data"


def upload_started_at(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/startedat"


def upload_state(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/state"


def upload_tail(name: str, upload_id: str, nonce: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/tails/{nonce}"


def uploads_directory(name: str) -> str:
    """Every upload session of repository `name` (the upload purger walks it)."""
    return f"{REPOSITORIES}/{name}/_uploads"


def is_repository_marker(child: str) -> bool:
    """A directory named ``_manifests`` (or another ``_``-prefixed one) marks its parent as a repository."""
    return child.startswith("_")


def writeback_marker(digest: Digest) -> str:
    """Claimed by the edge writing a remote blob back into the bucket, so other edges do not write it too."""
    return f"{WRITEBACK}/{digest.algorithm}/{digest.hex}"


@dataclass(frozen=True, slots=True)
class KeyMeaning:
    """What a read key stands for: ``kind`` is blob, layer, revision or tag; `name` is empty for a blob."""

    kind: str
    name: str = ""
    digest: Digest | None = None
    tag: str = ""


_BLOB_KEY = re.compile(rf"{PREFIX}/blobs/(\w+)/[0-9a-f]{{2}}/([0-9a-f]+)/data")
_REPOSITORY_KEY = re.compile(
    rf"{REPOSITORIES}/(?P<name>.+?)/(?:_layers/(?P<lalg>\w+)/(?P<lhex>[0-9a-f]+)/link"
    r"|_manifests/revisions/(?P<ralg>\w+)/(?P<rhex>[0-9a-f]+)/link"
    r"|_manifests/tags/(?P<tag>[^/]+)/current/link)"
)


def meaning(key: str) -> KeyMeaning | None:
    """The inverse of the builders above for the keys a read path asks for; None for any other key."""
    match = _BLOB_KEY.fullmatch(key)
    if match:
        return KeyMeaning("blob", digest=_digest(match.group(1), match.group(2)))
    match = _REPOSITORY_KEY.fullmatch(key)
    if not match:
        return None
    name = match.group("name")
    if match.group("tag"):
        return KeyMeaning("tag", name, tag=match.group("tag"))
    if match.group("lalg"):
        return KeyMeaning("layer", name, digest=_digest(match.group("lalg"), match.group("lhex")))
    return KeyMeaning("revision", name, digest=_digest(match.group("ralg"), match.group("rhex")))


def _digest(algorithm: str, hex_: str) -> Digest | None:
    try:
        return parse_digest(f"{algorithm}:{hex_}")
    except RegistryError:
        return None
