"""The access log: one line per request, JSON for pipelines or the combined log format (plus the edge's own
``key=value`` fields) for people and log tools, chosen by ``[log] format``."""

from __future__ import annotations

import re
import socket
from datetime import datetime, timezone

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
        assert set(entry) == {
            "time", "remote", "method", "path", "query", "protocol", "route", "name", "status", "bytes", "referer",
            "user_agent", "duration", "cache", "subject",
        }
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


# The combined log format as log tools read it (quoted fields may hold backslash escapes), then our fields.
COMBINED = re.compile(
    r'^(?P<remote>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"(?P<extra>( \w+=\S+)*)$'
)
DIGEST = "sha256:" + "ab" * 32


def test_a_text_line_is_the_combined_log_format_with_the_edge_fields_after_it(tmp_path):
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data")) as edge:
        headers = {"User-Agent": 'containerd/1.7 "quoted" \\ back', "Referer": "https://example.test/x"}
        assert httpx.get(f"{edge.url}/v2/team/ux/blobs/{DIGEST}?ns=docker.io", headers=headers).status_code == 404
    lines = [line for line in edge.log_path.read_text().splitlines() if f"/v2/team/ux/blobs/{DIGEST}" in line]
    assert len(lines) == 1
    match = COMBINED.match(lines[0])
    assert match, lines[0]
    assert match["remote"] == "127.0.0.1" and match["ident"] == "-" and match["user"] == "-"
    logged = datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z")
    assert abs((datetime.now(timezone.utc) - logged).total_seconds()) < 120
    assert match["request"] == f"GET /v2/team/ux/blobs/{DIGEST}?ns=docker.io HTTP/1.1"
    assert match["status"] == "404" and int(match["bytes"]) > 0
    assert match["referer"] == "https://example.test/x"
    assert match["agent"] == 'containerd/1.7 \\"quoted\\" \\\\ back'
    extra = dict(field.split("=", 1) for field in match["extra"].split())
    assert extra["route"] == "blob" and extra["cache"] == "-" and float(extra["duration"]) >= 0


def test_a_hostile_path_user_and_agent_stay_one_line_and_forge_nothing():
    entry = {
        "time": datetime(2026, 12, 7, 1, 21, 57, tzinfo=timezone.utc), "remote": "10.0.0.9", "method": "GET",
        "path": '/v2/evil"/blobs/x\n127.0.0.1 - - [07/Dec/2026:01:21:57 +0000] "GET /forged HTTP/1.1" 200 1',
        "query": 'a="b"', "protocol": "HTTP/1.1", "route": "blob", "name": "evil", "status": 404, "bytes": 120,
        "referer": None, "user_agent": 'ua"\x00\\', "duration": 0.0031, "cache": None, "subject": "mallory x",
    }
    line = format_text(entry)
    assert "\n" not in line and "\x00" not in line
    match = COMBINED.match(line)
    assert match, line
    assert match["time"] == "07/Dec/2026:01:21:57 +0000"
    assert match["user"] == "mallory\\x20x"
    assert match["request"] == (
        'GET /v2/evil\\"/blobs/x\\x0a127.0.0.1 - - [07/Dec/2026:01:21:57 +0000] \\"GET /forged HTTP/1.1\\" 200 1'
        '?a=\\"b\\" HTTP/1.1'
    )
    assert match["agent"] == 'ua\\"\\x00\\\\'
    assert match["referer"] == "-"
    assert match["extra"] == " duration=0.0031 cache=- route=blob"


@pytest.mark.parametrize(("key", "value"), [("format", "xml"), ("access", "maybe")])
def test_a_bad_log_setting_names_its_key(tmp_path, key, value):
    (tmp_path / "mirror.toml").write_text(f'[log]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=rf"^log\.{key}:"):
        load(tmp_path / "mirror.toml", environ={})


def test_a_raw_quote_in_a_clients_request_target_is_escaped_in_the_line(tmp_path):
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data")) as edge:
        with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as connection:
            connection.sendall(b'GET /v2/team/a"b/tags/list HTTP/1.1\r\nHost: x\r\nUser-Agent: a"b\r\nConnection: close\r\n\r\n')
            answer = connection.recv(65536)
        assert answer.startswith(b"HTTP/1.1 ")
    lines = [line for line in edge.log_path.read_text().splitlines() if "/v2/team/a" in line]
    assert len(lines) == 1
    match = COMBINED.match(lines[0])
    assert match, lines[0]
    assert match["request"] == 'GET /v2/team/a\\"b/tags/list HTTP/1.1'
    assert match["agent"] == 'a\\"b'
