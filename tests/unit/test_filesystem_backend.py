"""The filesystem backend behaves like the object store it stands for: directories are its own artefact, so a put
and a delete_tree racing on one prefix never fail the way S3 never would."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mirror.upstream.base import NotFound
from mirror.upstream.filesystem import FilesystemUpstream
from tests.support.spooled_parts import part_from_the_middle_of_a_spool

ROUNDS = 200


def test_puts_racing_a_delete_tree_of_their_prefix_never_fail(tmp_path: Path) -> None:
    backend = FilesystemUpstream(tmp_path / "bucket")

    async def race() -> None:
        for round_number in range(ROUNDS):
            prefix = f"uploads/{round_number % 3}"
            await backend.put(f"{prefix}/tails/seed", b"x")
            await asyncio.gather(
                backend.delete_tree(prefix),
                *(backend.put(f"{prefix}/tails/{index}/deep/object", b"y" * index) for index in range(4)),
                backend.put(f"{prefix}/state", b"{}"),
            )

    asyncio.run(race())
    assert (tmp_path / "bucket").is_dir()


def test_delete_tree_removes_every_object_and_directory_under_its_prefix(tmp_path: Path) -> None:
    backend = FilesystemUpstream(tmp_path / "bucket")

    async def fill_and_delete() -> None:
        for key in ("a/state", "a/tails/1", "a/tails/2/deep", "b/state"):
            await backend.put(key, b"z")
        await backend.delete_tree("a")
        await backend.delete_tree("never-written")

    asyncio.run(fill_and_delete())
    assert not (tmp_path / "bucket" / "a").exists()
    assert (tmp_path / "bucket" / "b" / "state").read_bytes() == b"z"


def test_of_completions_racing_one_assembles_and_the_others_find_no_upload(tmp_path: Path) -> None:
    backend = FilesystemUpstream(tmp_path / "bucket")
    part = b"p" * (1024 * 1024)

    async def complete_four_times() -> list[object]:
        upload_id = await backend.start_multipart("blob")
        etags = [await backend.put_part("blob", upload_id, number, part, len(part)) for number in (1, 2, 3)]
        parts = list(zip((1, 2, 3), etags))
        return await asyncio.gather(
            *(backend.complete_multipart("blob", upload_id, parts) for _ in range(4)), return_exceptions=True
        )

    for _ in range(20):
        outcomes = asyncio.run(complete_four_times())
        assert outcomes.count(None) == 1, outcomes
        assert all(isinstance(outcome, NotFound) for outcome in outcomes if outcome is not None), outcomes
        assert (tmp_path / "bucket" / "blob").read_bytes() == part * 3


def test_a_part_is_the_size_bytes_from_the_files_position_and_not_what_lies_after(tmp_path: Path) -> None:
    """A push's spool files are reused (`mirror.push.spool.SpoolPool`): a shorter part in a longer file is
    followed by an older part's bytes, which must not reach the object."""
    data = os.urandom(3 * 1024 * 1024 + 7)
    backend = FilesystemUpstream(tmp_path / "bucket")

    assert asyncio.run(part_from_the_middle_of_a_spool(backend, tmp_path / "spool", "blob", data)) == data

