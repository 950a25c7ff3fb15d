"""The image and the chart agree: what the Dockerfile declares is what the DaemonSet relies on.

Building the image needs a base image; here that takes debootstrap plus a docker build on the vfs driver (about
ten minutes), so the build is not part of the suite; these checks keep the two files from drifting apart.
"""

from __future__ import annotations

import json

from tests.deploy.conftest import REPO, find, render

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def final_stage() -> dict[str, list[str]]:
    """Instruction → arguments of the last stage (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages: list[dict[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append({})
        elif stages:
            stages[-1].setdefault(instruction.upper(), []).append(rest.strip())
    return stages[-1]


def test_the_image_runs_the_edge_as_the_non_root_user_the_chart_expects():
    stage = final_stage()
    pod = find(render(), "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]
    user = pod["securityContext"]["runAsUser"]
    assert stage["USER"] == [f"{user}:{pod['securityContext']['runAsGroup']}"]
    assert stage["EXPOSE"] == ["5000"]
    assert json.loads(stage["ENTRYPOINT"][0]) == ["edge-mirror"]
    assert pod["containers"][0]["args"][0] == "serve"


def test_the_image_volume_is_where_the_chart_mounts_the_cache():
    volume = json.loads(final_stage()["VOLUME"][0])
    edge = find(render(), "DaemonSet", "edge-edge-mirror")["spec"]["template"]["spec"]["containers"][0]
    mounts = {mount["name"]: mount["mountPath"] for mount in edge["volumeMounts"]}
    assert volume == [mounts["cache"]]
    default_config = final_stage()["RUN"][-1]  # the printf that writes /etc/edge-mirror/mirror.toml
    assert "/etc/edge-mirror/mirror.toml" in default_config and f'dir = "{mounts["cache"]}"' in default_config
