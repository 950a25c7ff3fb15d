"""Accept negotiation for manifests, as registry:2 2.8 does it for OCI types. A manifest is never converted.

Clients may send several Accept headers and comma-separated lists; parameters (``;q=``) are ignored.
An OCI manifest or index is served only to a client that accepts its type (or ``*/*``); otherwise the answer
is MANIFEST_UNKNOWN, which is what tells an old client the image is not for it. Docker types are served as
stored (registry:2 would rewrite schema2 to schema1 for a client that does not accept schema2; we never do).
"""

from __future__ import annotations

from typing import Iterable

from mirror import errors
from mirror.mediatypes import OCI_INDEX, OCI_MANIFEST

ANY = "*/*"
_NEEDS_EXPLICIT_ACCEPT = {
    OCI_MANIFEST: "OCI manifest found, but the Accept header does not support OCI manifests",
    OCI_INDEX: "OCI index found, but the Accept header does not support OCI indexes",
}


def accepted_types(accept_headers: Iterable[str]) -> set[str]:
    """Media types named by every Accept header, lower-cased, without parameters."""
    accepted: set[str] = set()
    for header in accept_headers:
        for item in header.split(","):
            media_type = item.split(";", 1)[0].strip().lower()
            if media_type:
                accepted.add(media_type)
    return accepted


def check_acceptable(media_type: str, accepted: set[str]) -> None:
    """Raise MANIFEST_UNKNOWN when the client cannot take a manifest of `media_type`."""
    message = _NEEDS_EXPLICIT_ACCEPT.get(media_type)
    if message is not None and media_type not in accepted and ANY not in accepted:
        raise errors.RegistryError(errors.MANIFEST_UNKNOWN, message, {"mediaType": media_type})
