"""The tag and link caches over a real (filesystem) backend: races with pushes, TTLs, and memory/disk bounds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

from mirror import config, layout, metrics
from mirror.api.failures import registry_error
from mirror.cache.links import LinkCache
from mirror.domain import Problem
from mirror.reference import Digest, parse_digest
from mirror.upstream import BackendError
from mirror.upstream.filesystem import FilesystemUpstream
from tests.support.bucket_files import put
from tests.support.clock import FakeClock
from tests.support.digests import digest_of

KIB = 1024


def _digest(seed: str) -> Digest:
    return parse_digest(digest_of(seed.encode()))


def _settings(**overrides: str) -> config.CacheConfig:
    environ = {f"MIRROR_CACHE_{key.upper()}": value for key, value in overrides.items()}
    return config.load(None, environ=environ).cache


def _write(root: Path, key: str, digest: Digest) -> None:
    put(root, key, str(digest))


class HeldReads(FilesystemUpstream):
    """The filesystem backend, except that a read of a key `held` picks is held (after its bytes were read) until
    released: a slow answer from a far bucket."""

    def __init__(self, root: Path, held: Callable[[str], bool]) -> None:
        super().__init__(root)
        self.held = held
        self.read_started = asyncio.Event()
        self.release = asyncio.Event()

    async def read(self, key: str, max_size: int) -> bytes:
        data = await super().read(key, max_size)
        if self.held(key):
            self.read_started.set()
            await self.release.wait()
        return data


def _tag_link(key: str) -> bool:
    return key.endswith("/current/link")


def test_a_tag_read_that_started_before_a_push_does_not_restore_the_old_digest(tmp_path):
    old, new = _digest("old"), _digest("new")

    async def scenario() -> tuple[Digest, Digest]:
        backend = HeldReads(tmp_path / "bucket", _tag_link)
        _write(backend.root, layout.tag_current_link("team/app", "v1"), old)
        links = LinkCache(backend, tmp_path / "links", _settings(tag_ttl="1h"))
        try:
            slow_read = asyncio.create_task(links.resolve_tag("team/app", "v1"))
            await asyncio.wait_for(backend.read_started.wait(), 5)
            _write(backend.root, layout.tag_current_link("team/app", "v1"), new)  # the push writes the tag...
            links.remember_tag("team/app", "v1", new)  # ...and tells this edge's cache
            backend.release.set()
            answered = await slow_read
            return answered, await links.resolve_tag("team/app", "v1")
        finally:
            links.close()

    _, after = asyncio.run(scenario())
    assert after == new


def test_a_tag_read_that_started_before_a_tag_delete_does_not_bring_the_tag_back(tmp_path):
    old = _digest("old")

    async def scenario() -> str:
        backend = HeldReads(tmp_path / "bucket", _tag_link)
        _write(backend.root, layout.tag_current_link("team/app", "v1"), old)
        links = LinkCache(backend, tmp_path / "links", _settings(tag_ttl="1h"))
        try:
            slow_read = asyncio.create_task(links.resolve_tag("team/app", "v1"))
            await asyncio.wait_for(backend.read_started.wait(), 5)
            (backend.root / layout.tag_current_link("team/app", "v1")).unlink()  # the delete through this edge
            links.forget_tag("team/app", "v1")
            backend.release.set()
            await slow_read
            try:
                return str(await links.resolve_tag("team/app", "v1"))
            except Problem as error:
                return registry_error(error).code.code
        finally:
            links.close()

    assert asyncio.run(scenario()) == "MANIFEST_UNKNOWN"


def test_a_link_is_checked_again_after_link_ttl(tmp_path):
    digest = _digest("layer")

    async def scenario() -> tuple[bool, bool, bool]:
        backend = FilesystemUpstream(tmp_path / "bucket")
        _write(backend.root, layout.layer_link("team/app", digest), digest)
        clock = FakeClock()
        links = LinkCache(backend, tmp_path / "links", _settings(link_ttl="1h"), clock=clock)
        try:
            first = await links.is_linked("team/app", "blob", digest)
            (backend.root / layout.layer_link("team/app", digest)).unlink()  # deleted through registry:2
            clock.advance(3599)
            within_ttl = await links.is_linked("team/app", "blob", digest)
            clock.advance(1)
            after_ttl = await links.is_linked("team/app", "blob", digest)
            return first, within_ttl, after_ttl
        finally:
            links.close()

    assert asyncio.run(scenario()) == (True, True, False)


def test_a_remembered_link_expires_across_a_restart(tmp_path):
    digest = _digest("layer")

    async def scenario() -> bool:
        backend = FilesystemUpstream(tmp_path / "bucket")
        _write(backend.root, layout.layer_link("team/app", digest), digest)
        settings = _settings(link_ttl="1h")
        clock = FakeClock()
        links = LinkCache(backend, tmp_path / "links", settings, clock=clock)
        assert await links.is_linked("team/app", "blob", digest)
        links.close()
        (backend.root / layout.layer_link("team/app", digest)).unlink()
        clock.advance(3600)  # the edge was down for the whole TTL
        restarted = LinkCache(backend, tmp_path / "links", settings, clock=clock)
        try:
            return await restarted.is_linked("team/app", "blob", digest)
        finally:
            restarted.close()

    assert asyncio.run(scenario()) is False


def test_link_and_tag_memory_stays_within_its_byte_bound(tmp_path):
    async def scenario() -> tuple[int, bool]:
        backend = FilesystemUpstream(tmp_path / "bucket")
        links = LinkCache(backend, tmp_path / "links", _settings(link_memory="64KiB"))
        try:
            for index in range(5000):
                name = f"team-{index:05d}/" + "n" * 200
                links.remember_link(name, "blob", _digest(str(index)))
                links.remember_tag(name, "t" * 128, _digest(str(index)))
            recent = await links.is_linked(f"team-04999/{'n' * 200}", "blob", _digest("4999"))
            return links.memory_bytes(), recent
        finally:
            links.close()

    used, recent = asyncio.run(scenario())
    assert 0 < used <= 64 * KIB
    assert recent, "the most recent link must still be remembered"


def test_links_on_disk_stay_within_their_byte_bound(tmp_path):
    async def scenario() -> int:
        backend = FilesystemUpstream(tmp_path / "bucket")
        links = LinkCache(backend, tmp_path / "links", _settings(), disk_limit=1024 * KIB)
        try:
            for index in range(20000):
                links.remember_link(f"team-{index:05d}/" + "n" * 200, "blob", _digest(str(index)))
            return links.disk_bytes()
        finally:
            links.close()

    assert asyncio.run(scenario()) <= 1024 * KIB + 256 * KIB  # diskcache culls on the next write: one page of slack


def _layer_link(key: str) -> bool:
    return "/_layers/" in key


def test_a_link_read_that_started_before_a_forget_does_not_bring_the_link_back(tmp_path):
    blob = _digest("blob")

    async def scenario() -> bool:
        backend = HeldReads(tmp_path / "bucket", _layer_link)
        _write(backend.root, layout.layer_link("team/app", blob), blob)
        links = LinkCache(backend, tmp_path / "links", _settings(link_ttl="1h"))
        try:
            slow_read = asyncio.create_task(links.is_linked("team/app", "blob", blob))
            await asyncio.wait_for(backend.read_started.wait(), 5)
            (backend.root / layout.layer_link("team/app", blob)).unlink()  # deleted elsewhere...
            links.forget_link("team/app", "blob", blob)  # ...and a registry event says so
            backend.release.set()
            await slow_read
            return await links.is_linked("team/app", "blob", blob)
        finally:
            links.close()

    assert asyncio.run(scenario()) is False


def test_forgetting_a_digest_drops_every_tag_of_the_repository_pointing_at_it(tmp_path):
    deleted, kept = _digest("deleted"), _digest("kept")

    async def scenario() -> list[str]:
        backend = FilesystemUpstream(tmp_path / "bucket")
        links = LinkCache(backend, tmp_path / "links", _settings(tag_ttl="1h"))
        try:
            links.remember_tag("team/app", "v1", deleted)
            links.remember_tag("team/app", "latest", deleted)
            links.remember_tag("team/app", "v2", kept)
            links.remember_tag("team/other", "v1", deleted)
            assert links.forget_tags_pointing_at("team/app", deleted) == 2
            answers = []
            for name, tag in [("team/app", "v1"), ("team/app", "latest"), ("team/app", "v2"), ("team/other", "v1")]:
                try:
                    answers.append(str(await links.resolve_tag(name, tag)))
                except Problem as error:
                    answers.append(registry_error(error).code.code)
            return answers
        finally:
            links.close()

    assert asyncio.run(scenario()) == ["MANIFEST_UNKNOWN", "MANIFEST_UNKNOWN", str(kept), str(deleted)]


def test_a_tag_moved_in_the_bucket_is_seen_once_tag_ttl_has_passed(tmp_path):
    old, new = _digest("old"), _digest("new")

    async def scenario() -> list[Digest]:
        backend = FilesystemUpstream(tmp_path / "bucket")
        _write(backend.root, layout.tag_current_link("team/app", "v1"), old)
        clock = FakeClock()
        links = LinkCache(backend, tmp_path / "links", _settings(tag_ttl="30s"), clock=clock)
        try:
            seen = [await links.resolve_tag("team/app", "v1")]
            _write(backend.root, layout.tag_current_link("team/app", "v1"), new)  # pushed through registry:2
            clock.advance(29)
            seen.append(await links.resolve_tag("team/app", "v1"))
            clock.advance(1)
            seen.append(await links.resolve_tag("team/app", "v1"))
            return seen
        finally:
            links.close()

    assert asyncio.run(scenario()) == [old, old, new]


class Outage(FilesystemUpstream):
    """The filesystem backend, unreachable while `down` is set."""

    down = False

    async def read(self, key: str, max_size: int) -> bytes:
        if self.down:
            raise BackendError("the bucket is unreachable")
        return await super().read(key, max_size)


def test_a_stale_tag_is_served_when_the_backend_is_down_after_tag_ttl(tmp_path):
    digest = _digest("served")

    async def scenario() -> Digest:
        backend = Outage(tmp_path / "bucket")
        _write(backend.root, layout.tag_current_link("team/app", "v1"), digest)
        clock = FakeClock()
        links = LinkCache(backend, tmp_path / "links", _settings(tag_ttl="30s"), clock=clock)
        try:
            await links.resolve_tag("team/app", "v1")
            backend.down = True
            clock.advance(30)
            return await links.resolve_tag("team/app", "v1")
        finally:
            links.close()

    before = _stale_tags()
    assert asyncio.run(scenario()) == digest
    assert _stale_tags() == before + 1


def _stale_tags() -> float:
    sample = metrics.REGISTRY.get_sample_value("mirror_cache_requests_total", {"kind": "tag", "result": "stale"})
    return sample or 0.0
