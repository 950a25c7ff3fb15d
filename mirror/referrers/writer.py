"""Keep the referrers index in step with manifest pushes and deletes made through this edge.

Publishing calls `record` after a manifest is stored and `forget` before a manifest revision is removed. Each
(subject, referrer) pair is its own object, so pushes from several edges at once never overwrite each other.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from mirror import layout
from mirror.mediatypes import MANIFEST_MAX_SIZE
from mirror.reference import Digest
from mirror.referrers import index
from mirror.upstream import BackendError, NotFound, TooLarge, Upstream
from mirror.domain import Unavailable

log = logging.getLogger(__name__)

# Told which (repository, subject) list changed, so this edge's cached list is dropped at once.
Changed = Callable[[str, Digest], None]


class ReferrersWriter:
    def __init__(self, upstream: Upstream, changed: Changed) -> None:
        self._upstream = upstream
        self._changed = changed

    async def record(
        self, name: str, digest: Digest, media_type: str, document: dict[str, Any], data: bytes
    ) -> str | None:
        """Index a just-stored manifest if it has a subject; returns the subject to announce with ``OCI-Subject``.

        None when there is no subject, or when the entry could not be written: without the header the client
        keeps the referrers tag schema up to date instead, and the referrers API finds the manifest through it.
        """
        subject = index.subject_of(document)
        if subject is None:
            return None
        entry = index.descriptor(digest, data, media_type, document)
        try:
            await self._upstream.put(layout.referrer_entry(name, subject, digest), index.encode_entry(entry))
        except (NotFound, BackendError) as error:
            log.warning("could not index %s@%s as a referrer of %s: %s", name, digest, subject, error)
            return None
        self._changed(name, subject)
        return str(subject)

    async def forget(self, name: str, digest: Digest) -> None:
        """Remove the index entry of manifest `digest` (if it is a referrer) before its revision goes.

        A failure stops the delete (503), so the referrers list never keeps a manifest that a retried delete
        can no longer find.
        """
        try:
            data = await self._upstream.read(layout.blob_data(digest), MANIFEST_MAX_SIZE)
        except (NotFound, TooLarge):
            return
        except BackendError as error:
            raise Unavailable.of(error) from error
        try:
            subject, _ = index.parse_referrer(data, digest)
        except index.NotAReferrer:
            return
        try:
            await self._upstream.delete(layout.referrer_entry(name, subject, digest))
        except (NotFound, BackendError) as error:
            raise Unavailable.of(error) from error
        self._changed(name, subject)
