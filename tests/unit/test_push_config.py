"""The push settings: ``[upload] part_size`` / ``max_size`` and ``[storage] delete``, from TOML and ``MIRROR_*``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.config import ConfigError, load

MIB = 1024**2
GIB = 1024**3


def test_push_defaults_match_storj_segments_and_keep_deletes_off():
    settings = load(None, environ={})
    assert settings.upload.part_size == 64 * MIB
    assert settings.upload.max_size == 64 * GIB
    assert settings.storage.delete is False


def test_push_settings_from_toml_then_environment(tmp_path: Path):
    file = tmp_path / "mirror.toml"
    file.write_text('[storage]\ndelete = true\n[upload]\npart_size = "16MiB"\nmax_size = "2GiB"\n')
    from_file = load(file, environ={})
    assert (from_file.storage.delete, from_file.upload.part_size, from_file.upload.max_size) == (True, 16 * MIB, 2 * GIB)
    overridden = load(
        file,
        environ={"MIRROR_STORAGE_DELETE": "false", "MIRROR_UPLOAD_PART_SIZE": "5MiB", "MIRROR_UPLOAD_MAX_SIZE": "10GB"},
    )
    assert (overridden.storage.delete, overridden.upload.part_size, overridden.upload.max_size) == (False, 5 * MIB, 10**10)


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("MIRROR_UPLOAD_PART_SIZE", "4MiB", "upload.part_size"),
        ("MIRROR_UPLOAD_PART_SIZE", "6GiB", "upload.part_size"),
        ("MIRROR_UPLOAD_MAX_SIZE", "lots", "upload.max_size"),
        ("MIRROR_STORAGE_DELETE", "maybe", "storage.delete"),
    ],
)
def test_bad_push_settings_name_their_key(variable: str, value: str, key: str):
    with pytest.raises(ConfigError) as raised:
        load(None, environ={variable: value})
    assert raised.value.key == key
    assert str(raised.value).startswith(f"{key}: ")
