"""Helpers for the deploy tests: the chart rendered by real Helm (helm-python-sdk), and an edge serving a pull."""

from __future__ import annotations

import re

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.support import images, skopeo
from tests.support.edge import EdgeMirror, s3_storage

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "edge-mirror"
REGION_VALUES = sorted((REPO / "deploy" / "helm" / "regions").glob("*.yaml"))
# The chart's defaults and every shipped values file: what an operator installs.
VALUES_CASES = [pytest.param(None, id="defaults")] + [pytest.param(path, id=path.stem) for path in REGION_VALUES]

helm.disable_logging()


def load_values(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else yaml.safe_load(path.read_text())


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders (hooks included) for release ``edge`` in namespace ``edge-mirror``."""
    manifests = helm.Chart.load(CHART).render(values, name="edge", namespace="edge-mirror")
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [document for document in yaml.safe_load_all(text) if document]
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [item for item in objects if item["kind"] == kind and item["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


# What the kubelet puts in for `$(VAR)` references to the downward-API variables the chart sets.
DOWNWARD_API = {"POD_IP": "10.1.2.3", "NODE_IP": "10.0.0.7"}
KUBELET_EXPANDS = re.compile(r"\$\((POD_IP|NODE_IP)\)")


def edge_environ(objects: list[dict[str, Any]], existing: dict[tuple[str, str], str] | None = None) -> dict[str, str]:
    """The edge container's MIRROR_* environment as the kubelet gives it: each secretKeyRef read from the rendered
    Secrets, else from `existing` (Secrets made beforehand), else a stand-in value naming the Secret and key."""
    secrets = {(item["metadata"]["name"], key): value for item in objects if item["kind"] == "Secret"
               for key, value in item.get("stringData", {}).items()}
    secrets.update(existing or {})
    daemonset = next(item for item in objects if item["kind"] == "DaemonSet" and "helm.sh/hook" not in
                     item["metadata"].get("annotations", {}))
    environ = {}
    for item in daemonset["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in item:
            environ[item["name"]] = KUBELET_EXPANDS.sub(lambda match: DOWNWARD_API[match.group(1)], item["value"])
        elif "secretKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["secretKeyRef"]
            environ[item["name"]] = secrets.get((ref["name"], ref["key"]), f"secret {ref['name']} key {ref['key']}")
    return {name: value for name, value in environ.items() if name.startswith("MIRROR_")}


@pytest.fixture(scope="session")
def pulled_edge(seaweed, registry_s3, tmp_path_factory):
    """An edge on the session's bucket, logging JSON access lines, after an image was pulled through it twice."""
    work = tmp_path_factory.mktemp("deploy-edge")
    image = images.build_image(work / "app", "v1", [300_000, 20_000], seed=101)
    skopeo.push(work / "app", "v1", f"{registry_s3.host}/deploy/app:v1")
    with EdgeMirror(work / "edge", s3_storage(seaweed.endpoint, "registry"), log={"format": "json"}) as edge:
        for attempt in range(2):
            skopeo.pull(f"{edge.host}/deploy/app:v1", work / f"pull{attempt}")
        yield edge, image
