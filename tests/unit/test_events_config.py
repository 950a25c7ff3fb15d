"""``[events]`` and ``[[notifications.endpoints]]``: defaults, registry:2's keys, and errors that name the key."""

from pathlib import Path

import pytest

from mirror.config import ConfigError, load

GIB = 1024**3


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    file = tmp_path / "mirror.toml"
    file.write_text(text)
    return load(file, environ=environ or {})


def test_events_warm_every_repository_and_platform_by_default():
    events = load(None, environ={}).events
    assert (events.repositories, events.platforms, events.queue_size) == (("**",), (), 1000)
    assert (events.max_event_bytes, events.max_inflight_bytes) == (4 * GIB, GIB)


def test_events_settings_take_the_environment_form(tmp_path):
    events = _load(tmp_path, "", {"MIRROR_EVENTS_PLATFORMS": "linux/amd64,linux/arm/v7", "MIRROR_EVENTS_QUEUE_SIZE": "5"}).events
    assert events.platforms == ("linux/amd64", "linux/arm/v7")
    assert events.queue_size == 5


def test_a_platform_that_is_not_os_slash_arch_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="events.platforms"):
        _load(tmp_path, '[events]\nplatforms = ["amd64"]\n')


def test_a_registry2_notifications_block_reads_as_it_is_written(tmp_path):
    (endpoint,) = _load(tmp_path, """
[[notifications.endpoints]]
name = "region-b"
url = "http://10.0.0.1:5000/admin/notifications"
headers = {Authorization = ["Bearer abc"], X-Extra = "one"}
timeout = "2s"
threshold = 3
backoff = "500ms"
ignoredmediatypes = ["application/octet-stream"]
ignore = {actions = ["pull"]}
""").notifications
    assert endpoint.headers == (("Authorization", "Bearer abc"), ("X-Extra", "one"))
    assert (endpoint.timeout, endpoint.threshold, endpoint.backoff) == (2, 3, 0.5)
    assert endpoint.ignoredmediatypes == ("application/octet-stream",)
    assert endpoint.ignore_actions == ("pull",)
    assert "abc" not in repr(endpoint)  # headers carry tokens


@pytest.mark.parametrize("table, key", [
    ('name = "x"\nurl = "ftp://x"', "notifications.endpoints[0].url"),
    ('url = "http://x/"', "notifications.endpoints[0].name"),
    ('name = "x"\nurl = "http://x/"\nretries = 3', "notifications.endpoints[0].retries"),
    ('name = "x"\nurl = "http://x/"\nheaders = "Bearer x"', "notifications.endpoints[0].headers"),
])
def test_a_bad_endpoint_names_its_key(tmp_path, table, key):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, f"[[notifications.endpoints]]\n{table}\n")
    assert raised.value.key == key
