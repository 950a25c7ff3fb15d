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

from mirror.domain import Problem
from mirror.reference import Digest, parse_digest

PREFIX = "docker/registry/v2"
REPOSITORIES = f"{PREFIX}/repositories"
WRITEBACK = "edge-mirror/writeback"


def rooted(rootdirectory: str, key: str) -> str:
    """Prefix `key` with a backend's root directory (registry:2's ``rootdirectory``), if any."""
    root = rootdirectory.strip("/")
    return f"{root}/{key}" if root else key


class Key(str):
    """A storage key: its text is the path a backend stores the object under (relative to its root), so a backend
    uses it as it is. The keys a read path routes on are the subclasses below: each carries what it names, so a
    wrapper (the remote tier, the peer reader) reads fields and never parses the path back."""


class BlobKey(Key):
    """The content of blob or manifest `digest`, read on behalf of `repository` ("" when no repository asks: a
    peer, warming). The path names no repository; the remote tier routes a miss on `repository`."""

    digest: Digest
    repository: str

    def __new__(cls, digest: Digest, repository: str = "") -> "BlobKey":
        key = super().__new__(cls, f"{PREFIX}/blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data")
        key.digest, key.repository = digest, repository
        return key


class LinkKey(Key):
    """A repository's link to `digest`: a layer link or a manifest revision link."""

    repository: str
    digest: Digest

    def __new__(cls, path: str, repository: str, digest: Digest) -> "LinkKey":
        key = super().__new__(cls, path)
        key.repository, key.digest = repository, digest
        return key


class LayerLinkKey(LinkKey):
    """``_layers/<algorithm>/<hex>/link``: blob `digest` is part of `repository`."""


class RevisionLinkKey(LinkKey):
    """``_manifests/revisions/<algorithm>/<hex>/link``: manifest `digest` is part of `repository`."""


class TagLinkKey(Key):
    """``_manifests/tags/<tag>/current/link``: the digest `tag` of `repository` points at now."""

    repository: str
    tag: str

    def __new__(cls, repository: str, tag: str) -> "TagLinkKey":
        key = super().__new__(cls, f"{REPOSITORIES}/{repository}/_manifests/tags/{tag}/current/link")
        key.repository, key.tag = repository, tag
        return key


def blob_data(digest: Digest, repository: str = "") -> BlobKey:
    """The content of `digest`; `repository` is the one asking for it (it is not part of the path)."""
    return BlobKey(digest, repository)


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> LayerLinkKey:
    return LayerLinkKey(f"{REPOSITORIES}/{name}/_layers/{digest.algorithm}/{digest.hex}/link", name, digest)


def manifest_revision_link(name: str, digest: Digest) -> RevisionLinkKey:
    path = f"{REPOSITORIES}/{name}/_manifests/revisions/{digest.algorithm}/{digest.hex}/link"
    return RevisionLinkKey(path, name, digest)


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
    except Problem:
        return None


def tags_directory(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_directory(name: str, tag: str) -> str:
    """Everything of one tag (current link and index); registry:2 removes it whole to untag."""
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current_link(name: str, tag: str) -> TagLinkKey:
    return TagLinkKey(name, tag)


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
