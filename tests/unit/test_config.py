import subprocess
import sys
from pathlib import Path

import pytest

from mirror import config
from mirror.config import ConfigError, load

GIB = 1024**3


def test_defaults_use_the_embedded_filesystem_backend():
    settings = load(None, environ={})
    assert settings.storage.driver == "filesystem"
    assert settings.cache.size == 10 * GIB
    assert settings.cache.tag_ttl == 30
    assert settings.fill.part_size == 64 * 1024**2
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 5000)


def test_http_timeouts_and_connection_cap_have_bounded_defaults():
    http = load(None, environ={}).http
    assert (http.keep_alive_timeout, http.read_timeout, http.send_timeout) == (75, 60, 60)
    assert (http.max_connections, http.backlog) == (1024, 1024)


def test_toml_file_then_environment_override(tmp_path: Path):
    file = tmp_path / "mirror.toml"
    file.write_text('[cache]\nsize = "2GiB"\n[storage.s3]\nbucket = "from-file"\n')
    settings = load(file, environ={"MIRROR_STORAGE_S3_BUCKET": "from-env", "MIRROR_FILL_PARALLELISM": "3"})
    assert settings.cache.size == 2 * GIB
    assert settings.storage.s3.bucket == "from-env"
    assert settings.fill.parallelism == 3


def test_env_names_follow_the_section_path():
    assert config.env_name("storage.s3", "regionendpoint") == "MIRROR_STORAGE_S3_REGIONENDPOINT"


@pytest.mark.parametrize(
    ("text", "expected"), [("10GiB", 10 * GIB), ("64MiB", 64 * 1024**2), ("500MB", 500 * 10**6), ("1048576", 1048576), (4096, 4096)]
)
def test_sizes_parse(text, expected):
    assert config.parse_size("k", text) == expected


@pytest.mark.parametrize(("text", "expected"), [("30s", 30), ("5m", 300), ("1h", 3600), ("250ms", 0.25), (7, 7)])
def test_durations_parse(text, expected):
    assert config.parse_duration("k", text) == expected


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"MIRROR_STORAGE_DRIVER": "azure"}, "storage.driver"),
        ({"MIRROR_CACHE_SIZE": "lots"}, "cache.size"),
        ({"MIRROR_STORAGE_DRIVER": "s3"}, "storage.s3.bucket"),
        ({"MIRROR_FILL_PARALLELISM": "0"}, "fill.parallelism"),
        ({"MIRROR_HTTP_ADDR": "nowhere"}, "http.addr"),
        ({"MIRROR_HTTP_READ_TIMEOUT": "0s"}, "http.read_timeout"),
        ({"MIRROR_HTTP_SEND_TIMEOUT": "forever"}, "http.send_timeout"),
        ({"MIRROR_HTTP_KEEP_ALIVE_TIMEOUT": "-1"}, "http.keep_alive_timeout"),
        ({"MIRROR_HTTP_MAX_CONNECTIONS": "0"}, "http.max_connections"),
        ({"MIRROR_HTTP_MAX_CONNECTIONS_PER_CLIENT": "0"}, "http.max_connections_per_client"),
        ({"MIRROR_HTTP_HEADER_TIMEOUT": "0s"}, "http.header_timeout"),
        ({"MIRROR_HTTP_BACKLOG": "many"}, "http.backlog"),
        ({"MIRROR_CACHE_TAG_TTL": "soon"}, "cache.tag_ttl"),
        ({"MIRROR_FILL_FIRST_PART_SIZE": "1GiB"}, "fill.first_part_size"),
        ({"MIRROR_STORAGE_DRIVER": "s3", "MIRROR_STORAGE_S3_BUCKET": "b", "MIRROR_STORAGE_S3_REGIONENDPOINT": "ftp://x"}, "storage.s3.regionendpoint"),
    ],
)
def test_bad_values_name_their_key(environ, key):
    with pytest.raises(ConfigError) as raised:
        load(None, environ=environ)
    assert raised.value.key == key
    assert str(raised.value).startswith(f"{key}: ")


def test_unknown_keys_in_the_file_are_rejected(tmp_path: Path):
    file = tmp_path / "mirror.toml"
    file.write_text("[cache]\nsise = 1\n")
    with pytest.raises(ConfigError) as raised:
        load(file, environ={})
    assert raised.value.key == "cache.sise"


def test_serve_with_a_bad_config_exits_non_zero_with_one_line_naming_the_key(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "mirror", "serve"],
        env={"MIRROR_STORAGE_DRIVER": "s3", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["edge-mirror: config error: storage.s3.bucket: is required when storage.driver is s3"]


def test_cache_bounds_and_link_ttl_have_defaults_and_env_overrides():
    defaults = load(None, environ={}).cache
    assert (defaults.link_ttl, defaults.manifest_memory, defaults.link_memory) == (3600, 64 * 1024**2, 16 * 1024**2)
    tuned = load(None, environ={"MIRROR_CACHE_LINK_TTL": "5m", "MIRROR_CACHE_MANIFEST_MEMORY": "8MiB"}).cache
    assert (tuned.link_ttl, tuned.manifest_memory) == (300, 8 * 1024**2)


def test_a_link_memory_too_small_for_one_entry_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"^cache\.link_memory: must be at least 64KiB"):
        load(None, environ={"MIRROR_CACHE_LINK_MEMORY": "1KiB"})


def test_fill_defaults_use_the_whole_storj_parallelism_under_a_node_budget():
    fill = load(None, environ={}).fill
    assert (fill.parallelism, fill.max_connections, fill.min_part_size) == (24, 32, 2 * 1024**2)


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [("MIRROR_FILL_MIN_PART_SIZE", "1KiB", "fill.min_part_size"), ("MIRROR_FILL_MAX_CONNECTIONS", "0", "fill.max_connections")],
)
def test_bad_fill_settings_name_their_key(variable, value, key):
    with pytest.raises(ConfigError) as raised:
        load(None, environ={variable: value})
    assert raised.value.key == key


def test_an_unknown_mirror_variable_is_named_in_a_warning(caplog):
    with caplog.at_level("WARNING", logger="mirror.config"):
        settings = load(None, environ={"MIRROR_CACHE_SIZ": "1GiB", "MIRROR_CACHE_SIZE": "2GiB", "HOME": "/root"})
    assert settings.cache.size == 2 * GIB
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 1 and "MIRROR_CACHE_SIZ" in warned[0].split()


def test_upload_max_size_beyond_ten_thousand_parts_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as raised:
        load(None, environ={"MIRROR_UPLOAD_PART_SIZE": "5MiB", "MIRROR_UPLOAD_MAX_SIZE": "64GiB"})
    assert raised.value.key == "upload.max_size"
    assert load(None, environ={"MIRROR_UPLOAD_PART_SIZE": "5MiB", "MIRROR_UPLOAD_MAX_SIZE": "48GiB"}).upload.max_size == 48 * GIB


def test_upload_parallel_parts_defaults_to_eight_and_follows_its_variable():
    assert load(None, environ={}).upload.parallel_parts == 8
    assert load(None, environ={"MIRROR_UPLOAD_PARALLEL_PARTS": "2"}).upload.parallel_parts == 2


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_bad_upload_parallel_parts_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError) as raised:
        load(None, environ={"MIRROR_UPLOAD_PARALLEL_PARTS": value})
    assert raised.value.key == "upload.parallel_parts"


def test_every_declared_key_has_its_variable_and_lists_take_the_comma_form(caplog):
    """Each key's MIRROR_ name comes from its declaration: set every one to its default (lists comma-separated)
    and nothing is warned about and nothing changes."""
    def written(value):
        if isinstance(value, bool):
            return str(value).lower()
        return ",".join(value) if isinstance(value, list) else str(value)

    environ = {config.env_name(section, key): written(value) for section, keys in config.DEFAULTS.items()
               for key, value in keys.items() if value is not None}
    assert "MIRROR_PEERS_SELF" in environ and "MIRROR_EVENTS_PLATFORMS" in environ
    with caplog.at_level("WARNING", logger="mirror.config"):
        assert load(None, environ=environ) == load(None, environ={})
    assert caplog.records == []
