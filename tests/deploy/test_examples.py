"""The client examples in deploy/examples/ agree with each other: same edge, same registries.

dockerd, containerd (hosts.toml) and skopeo (registries.conf) run these very files in tests/e2e; k3s is not
available here, so its registries.yaml is held to the same edge and registries as the files that are proven.
"""

from __future__ import annotations

import json
import tomllib

import yaml

from tests.support.examples import EXAMPLE_EDGE, EXAMPLE_REGISTRY, EXAMPLES


def test_k3s_registries_yaml_mirrors_the_same_registries_through_the_same_edge():
    mirrors = yaml.safe_load((EXAMPLES / "registries.yaml").read_text())["mirrors"]
    conf = tomllib.loads((EXAMPLES / "registries.conf").read_text())
    assert set(mirrors) == {registry["prefix"] for registry in conf["registry"]} == {EXAMPLE_REGISTRY, "docker.io"}
    hosts = tomllib.loads((EXAMPLES / "hosts.toml").read_text())
    assert all(entry["endpoint"] == list(hosts["host"]) for entry in mirrors.values())
    assert all(registry["mirror"] == [{"location": EXAMPLE_EDGE, "insecure": True}] for registry in conf["registry"])


def test_daemon_json_points_docker_at_the_edge():
    daemon = json.loads((EXAMPLES / "daemon.json").read_text())
    assert daemon == {"registry-mirrors": [f"http://{EXAMPLE_EDGE}"], "insecure-registries": [EXAMPLE_EDGE]}


def test_the_storj_registry_config_uses_whole_segment_chunks_and_no_upload_part_copy():
    s3 = yaml.safe_load((EXAMPLES / "registry-config.yml").read_text())["storage"]["s3"]
    assert s3["chunksize"] == 64 * 1024 * 1024
    assert s3["multipartcopythresholdsize"] == 5 * 1024**3
    assert s3["regionendpoint"].startswith("https://gateway.")
