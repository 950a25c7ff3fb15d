"""A referrers list is trusted for ``cache.tag_ttl``, then read again: on a fake clock, over a real filesystem
backend laid out as the edge's referrers index."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mirror import config, layout
from mirror.cache.links import LinkCache
from mirror.cache.referrers import ReferrersCache
from mirror.domain import Unknown
from mirror.reference import Digest, parse_digest
from mirror.referrers import index
from mirror.upstream.filesystem import FilesystemUpstream
from tests.support.bucket_files import put
from tests.support.clock import FakeClock
from tests.support.digests import digest_of

NAME = "team/signed"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _index_referrer(root: Path, subject: Digest, seed: str) -> str:
    """Index a referrer of `subject` in `NAME` (and link it there, as a push would); its digest."""
    referrer = parse_digest(digest_of(seed.encode()))
    entry = {"mediaType": OCI_MANIFEST, "digest": str(referrer), "size": 100}
    put(root, layout.referrer_entry(NAME, subject, referrer), index.encode_entry(entry))
    put(root, layout.manifest_revision_link(NAME, referrer), str(referrer).encode())
    return str(referrer)


async def _no_manifest(name: str, digest: Digest) -> object:
    raise Unknown("manifest", f"{digest} is not in {name}")


def test_a_referrers_list_is_trusted_for_tag_ttl_then_read_again(tmp_path):
    subject = parse_digest(digest_of(b"subject"))
    backend = FilesystemUpstream(tmp_path / "bucket")
    settings = config.load(None, environ={"MIRROR_CACHE_TAG_TTL": "30s"}).cache
    first = _index_referrer(backend.root, subject, "signature")

    async def scenario() -> list[list[str]]:
        clock = FakeClock()
        links = LinkCache(backend, tmp_path / "links", settings, clock=clock)
        referrers = ReferrersCache(backend, links, _no_manifest, settings.tag_ttl, clock=clock)  # type: ignore[arg-type]
        try:
            seen = [await referrers.referrers(NAME, subject)]
            _index_referrer(backend.root, subject, "sbom")  # pushed through another edge
            clock.advance(29)
            seen.append(await referrers.referrers(NAME, subject))
            clock.advance(1)
            seen.append(await referrers.referrers(NAME, subject))
            return [sorted(entry["digest"] for entry in listed) for listed in seen]
        finally:
            links.close()

    second = str(parse_digest(digest_of(b"sbom")))
    assert asyncio.run(scenario()) == [[first], [first], sorted([first, second])]
