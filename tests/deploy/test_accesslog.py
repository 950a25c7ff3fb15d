"""The access log: one line per request, JSON for pipelines or text for people, chosen by ``[log] format``."""

from __future__ import annotations

import bcrypt
import httpx
import orjson
import pytest

from mirror.api.accesslog import format_text
from mirror.config import ConfigError, load
from tests.support.edge import EdgeMirror, filesystem_storage


def access_lines(edge) -> list[dict]:
    lines = []
    for line in edge.log_path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(orjson.loads(line))
    return lines


def test_each_blob_get_logs_its_cache_result_a_miss_then_a_hit(pulled_edge):
    edge, image = pulled_edge
    gets = [entry for entry in access_lines(edge) if entry["route"] == "blob" and entry["method"] == "GET"
            and entry["status"] == 200 and entry["bytes"] > 0]
    assert len(gets) >= 2 * len(image.layer_digests)
    results = [entry["cache"] for entry in gets]
    assert "miss" in results and "hit" in results
    assert results.index("miss") < results.index("hit")
    assert all(entry["name"] == "deploy/app" for entry in gets)


def test_every_json_line_has_the_documented_fields(pulled_edge):
    edge, _ = pulled_edge
    entries = access_lines(edge)
    assert entries
    for entry in entries:
        assert set(entry) == {"time", "remote", "method", "route", "name", "status", "bytes", "duration", "cache", "subject"}
        assert entry["duration"] >= 0 and entry["bytes"] >= 0
    manifests = [entry for entry in entries if entry["route"] == "manifest" and entry["status"] == 200]
    assert manifests and all(entry["bytes"] > 0 or entry["method"] == "HEAD" for entry in manifests)


def test_the_authenticated_subject_is_logged(tmp_path):
    users = tmp_path / "users"
    users.write_text(f"alice:{bcrypt.hashpw(b'alice-pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    auth = {"auth": {"method": "htpasswd"}, "auth.htpasswd": {"path": str(users)}}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), log={"format": "json"}, **auth) as edge:
        assert httpx.get(f"{edge.url}/v2/team/app/tags/list", auth=("alice", "alice-pw")).status_code == 404
        assert httpx.get(f"{edge.url}/v2/team/app/tags/list").status_code == 401
    listings = [entry for entry in access_lines(edge) if entry["route"] == "list_tags"]
    assert [(entry["status"], entry["subject"]) for entry in listings] == [(404, "alice"), (401, None)]


def test_the_text_format_keeps_a_hostile_name_on_one_quoted_line():
    line = format_text({
        "time": "2026-11-29T16:00:00.000+00:00", "remote": "10.0.0.9", "method": "GET", "route": "manifest",
        "name": 'evil\nGET "x', "status": 404, "bytes": 120, "duration": 0.0031, "cache": None, "subject": "alice",
    })
    assert "\n" not in line
    assert line == (
        '2026-11-29T16:00:00.000+00:00 10.0.0.9 "alice" "GET manifest "evil\\nGET \\"x"" 404 120 0.0031s cache=-'
    )


@pytest.mark.parametrize(("key", "value"), [("format", "xml"), ("access", "maybe")])
def test_a_bad_log_setting_names_its_key(tmp_path, key, value):
    (tmp_path / "mirror.toml").write_text(f'[log]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=rf"^log\.{key}:"):
        load(tmp_path / "mirror.toml", environ={})
