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
            └── _uploads/<uuid>/                               one upload in progress; removed whole when done
                ├── data                                       bytes of an upload in progress
                ├── startedat                                  RFC 3339 time the upload began
                ├── hashstates/<algorithm>/<offset>            resumable hash state (registry:2 only)
                ├── state                                      edge only: multipart id, parts, offset (JSON)
                └── tails/<offset>                             edge only: bytes not yet a full part, ending at
                                                               <offset>; a new key per chunk, so a chunk that
                                                               fails half-way never spoils the saved state

A link file holds the text ``<algorithm>:<hex>`` of the digest it points at.
Keys here are relative to the storage root; `rooted` prefixes a backend's root directory.
"""

from __future__ import annotations

from mirror.errors import RegistryError
from mirror.reference import Digest, parse_digest

PREFIX = "docker/registry/v2"
REPOSITORIES = f"{PREFIX}/repositories"


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


def upload_tail(name: str, upload_id: str, offset: int) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/tails/{offset}"


def is_repository_marker(child: str) -> bool:
    """A directory named ``_manifests`` (or another ``_``-prefixed one) marks its parent as a repository."""
    return child.startswith("_")
