"""Third-party clients through the edge: buildah 1.28 and podman 4.3 (Debian 12), and the PyPI clients `oras`
(oras-py) and `regshape`.

One htpasswd edge takes the pushes (`push` edge); a second edge on the same bucket, anonymous pull only, with its
own empty cache, serves the pulls (`pull` edge). buildah builds FROM scratch (local files only, no network) a
three-layer image and a two-platform index and pushes both after `buildah login`; podman pulls them back through
the second edge, by name and through `deploy/examples/registries.conf` aimed at an unreachable registry; podman
pushes the image to another repository and the edge mounts every blob; regshape mounts a blob, resumes a chunked
upload it started, and pages through tags; oras pushes an artifact whose `subject` is the image, and regshape
lists it among the image's referrers. podman and buildah keep all their state under the test's directory
(`tests/support/containers_tools.py`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import bcrypt
import httpx
import pytest

from tests.conftest import BUCKET
from tests.support import examples
from tests.support.containers_tools import DEAD_REGISTRY, ContainerTools, build_context
from tests.support.daemons import offline_env
from tests.support.edge import EdgeMirror, s3_storage

USER = ("ci", "third-party-secret")
OCI_TYPES = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
             "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")


@pytest.fixture(scope="module")
def push_edge(seaweed, tmp_path_factory):
    work = tmp_path_factory.mktemp("third-party-push-edge")
    (work / "htpasswd").write_text(f"{USER[0]}:{bcrypt.hashpw(USER[1].encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    with EdgeMirror(
        work, s3_storage(seaweed.endpoint, BUCKET),
        auth={"method": "htpasswd"}, **{"auth.htpasswd": {"realm": "edge", "path": str(work / "htpasswd")}},
    ) as mirror:
        yield mirror


@pytest.fixture(scope="module")
def pull_edge(seaweed, push_edge, tmp_path_factory):
    """Anonymous pulls; the same user may push (a resumed upload continues here)."""
    htpasswd = str(push_edge.workdir / "htpasswd")
    with EdgeMirror(
        tmp_path_factory.mktemp("third-party-pull-edge"), s3_storage(seaweed.endpoint, BUCKET),
        auth={"method": "htpasswd", "anonymous": ["pull"]}, **{"auth.htpasswd": {"realm": "edge", "path": htpasswd}},
    ) as mirror:
        yield mirror


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    return ContainerTools(tmp_path_factory.mktemp("third-party-tools"))


@pytest.fixture(scope="module")
def pushed(tools, push_edge, tmp_path_factory):
    """buildah builds the image (amd64) and the two-platform index, logs in and pushes both through the push edge."""
    context = build_context(tmp_path_factory.mktemp("third-party-context"), seed=1019)
    tools.buildah("build", "-q", "--layers", "--platform", "linux/amd64,linux/arm64", "--manifest", "localhost/multi:v1",
                  "-f", str(context / "Containerfile"), str(context))
    tools.buildah("build", "-q", "--layers", "--platform", "linux/amd64", "-t", "localhost/app:v1",
                  "-f", str(context / "Containerfile"), str(context))
    tools.login("buildah", push_edge.host, *USER)
    tools.buildah("push", "--tls-verify=false", "localhost/app:v1", f"docker://{push_edge.host}/third/app:v1")
    tools.buildah("manifest", "push", "--all", "--tls-verify=false", "localhost/multi:v1", f"docker://{push_edge.host}/third/multi:v1")
    return {"app": "third/app", "multi": "third/multi"}


def _manifest(edge: EdgeMirror, repository: str, reference: str) -> tuple[dict, str]:
    response = httpx.get(f"{edge.url}/v2/{repository}/manifests/{reference}", headers={"Accept": OCI_TYPES}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json(), response.headers["Docker-Content-Digest"]


def _regshape(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    regshape = [sys.executable, "-c", "from regshape.cli.main import regshape; regshape()"]
    return subprocess.run([*regshape, "--insecure", *args], capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)


def test_buildah_pushes_a_three_layer_image_after_an_htpasswd_login(pushed, push_edge, pull_edge):
    assert httpx.get(f"{push_edge.url}/v2/third/app/manifests/v1").status_code == 401
    manifest, _ = _manifest(pull_edge, pushed["app"], "v1")
    assert len(manifest["layers"]) == 3
    for blob in [manifest["config"], *manifest["layers"]]:
        answer = httpx.get(f"{pull_edge.url}/v2/{pushed['app']}/blobs/{blob['digest']}", timeout=30)
        assert answer.status_code == 200 and "sha256:" + hashlib.sha256(answer.content).hexdigest() == blob["digest"]


def test_buildah_pushes_a_two_platform_index(pushed, pull_edge):
    index, _ = _manifest(pull_edge, pushed["multi"], "v1")
    platforms = {entry["platform"]["architecture"]: entry["digest"] for entry in index["manifests"]}
    assert set(platforms) == {"amd64", "arm64"}
    for digest in platforms.values():
        child, served_digest = _manifest(pull_edge, pushed["multi"], digest)
        assert served_digest == digest and len(child["layers"]) == 3


def test_podman_pulls_both_through_a_second_edge_with_an_empty_cache(pushed, pull_edge, tmp_path):
    podman = ContainerTools(tmp_path / "podman")
    manifest, _ = _manifest(pull_edge, pushed["app"], "v1")
    podman.podman("pull", "-q", "--tls-verify=false", f"{pull_edge.host}/{pushed['app']}:v1")
    image_id = podman.podman("image", "inspect", "--format", "{{.Id}}", f"{pull_edge.host}/{pushed['app']}:v1").stdout.strip()
    assert "sha256:" + image_id == manifest["config"]["digest"]
    podman.podman("pull", "-q", "--tls-verify=false", "--arch", "arm64", f"{pull_edge.host}/{pushed['multi']}:v1")
    arch = podman.podman("image", "inspect", "--format", "{{.Architecture}}", f"{pull_edge.host}/{pushed['multi']}:v1")
    assert arch.stdout.strip() == "arm64"


def test_podman_pulls_through_the_example_registries_conf_mirror_entry(pushed, pull_edge, tmp_path):
    """deploy/examples/registries.conf with its edge and registry swapped for the pull edge and a dead address."""
    podman = ContainerTools(tmp_path / "podman", examples.text("registries.conf", pull_edge.host, DEAD_REGISTRY))
    manifest, _ = _manifest(pull_edge, pushed["app"], "v1")
    podman.podman("pull", "-q", f"{DEAD_REGISTRY}/{pushed['app']}:v1")  # nothing listens there: the mirror answered
    image_id = podman.podman("image", "inspect", "--format", "{{.Id}}", f"{DEAD_REGISTRY}/{pushed['app']}:v1")
    assert "sha256:" + image_id.stdout.strip() == manifest["config"]["digest"]


def test_podman_push_to_another_repository_mounts_every_blob(pushed, tools, push_edge, pull_edge):
    manifest, _ = _manifest(pull_edge, pushed["app"], "v1")
    finished_before = push_edge.metrics().value("mirror_uploads_total", result="ok")
    tools.login("podman", push_edge.host, *USER)
    tools.podman("push", "-q", "--tls-verify=false", "localhost/app:v1", f"{push_edge.host}/third/app-copy:v1")
    copied, _ = _manifest(pull_edge, "third/app-copy", "v1")
    assert copied["layers"] == manifest["layers"]
    # The three layers are mounted from third/app (201 to POST ?mount=); containers/image uploads the small config.
    assert push_edge.metrics().value("mirror_uploads_total", result="ok") - finished_before <= 1


@pytest.fixture
def client_env(tmp_path):
    """HOME and DOCKER_CONFIG of this test only: `regshape auth login` writes its credentials there."""
    return {**offline_env(), "HOME": str(tmp_path / "home"), "DOCKER_CONFIG": str(tmp_path / "docker-config")}


def test_regshape_logs_in_and_mounts_a_blob_from_another_repository(pushed, push_edge, pull_edge, client_env):
    manifest, _ = _manifest(pull_edge, pushed["app"], "v1")
    layer = manifest["layers"][0]["digest"]
    refused = _regshape("auth", "login", "-r", push_edge.host, "-u", USER[0], "-p", "wrong", env=client_env)
    assert refused.returncode != 0
    login = _regshape("auth", "login", "-r", push_edge.host, "-u", USER[0], "-p", USER[1], env=client_env)
    assert login.returncode == 0, login.stderr + login.stdout
    mounted = _regshape("blob", "mount", "-r", f"{push_edge.host}/third/regshape-mounted", "-d", layer,
                        "--from-repo", pushed["app"], env=client_env)
    assert mounted.returncode == 0, mounted.stderr + mounted.stdout  # regshape exits 1 on 202 (no mount)
    assert httpx.head(f"{pull_edge.url}/v2/third/regshape-mounted/blobs/{layer}").status_code == 200


def test_an_upload_interrupted_on_one_edge_is_resumed_on_the_other(push_edge, pull_edge):
    """regshape's transport (RegistryClient, Basic auth) drives the session: POST and a first chunk to one edge;
    then, as a client restarting after a crash would, a new client asks the other edge where the upload stands
    (GET: 204 with Range) and sends the rest from there."""
    from regshape.libs.transport.client import RegistryClient, TransportConfig

    blob = hashlib.sha512(b"resumed").digest() * 4096
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    first = RegistryClient(TransportConfig(registry=push_edge.host, insecure=True, username=USER[0], password=USER[1]))
    started = first.post("/v2/third/resumed/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    chunk = first.patch(location, data=blob[:100_000], headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert chunk.status_code == 202, chunk.text

    resumed = RegistryClient(TransportConfig(registry=pull_edge.host, insecure=True, username=USER[0], password=USER[1]))
    status = resumed.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-99999"
    offset = int(status.headers["Range"].split("-")[1]) + 1
    rest = resumed.patch(status.headers.get("Location", location), data=blob[offset:],
                         headers={"Content-Range": f"{offset}-{len(blob) - 1}", "Content-Type": "application/octet-stream"})
    assert rest.status_code == 202, rest.text
    done = resumed.put(rest.headers["Location"], params={"digest": digest}, data=b"")
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == digest
    answer = httpx.get(f"{pull_edge.url}/v2/third/resumed/blobs/{digest}", timeout=30)
    assert answer.status_code == 200 and answer.content == blob


def _oras(edge: EdgeMirror):
    import oras.provider

    registry = oras.provider.Registry(hostname=edge.host, insecure=True, auth_backend="basic")
    registry.auth.set_basic_auth(*USER)  # what OrasClient.login does first (its docker-daemon login is not wanted)
    return registry


def test_oras_pushes_an_artifact_with_a_subject_that_regshape_lists_as_a_referrer(pushed, push_edge, pull_edge, tmp_path, monkeypatch):
    import oras.oci

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.chdir(tmp_path)
    _, image_digest = _manifest(pull_edge, pushed["app"], "v1")
    served = httpx.get(f"{pull_edge.url}/v2/{pushed['app']}/manifests/{image_digest}", headers={"Accept": OCI_TYPES})
    subject = oras.oci.Subject(served.headers["Content-Type"], image_digest, len(served.content))
    (tmp_path / "sbom.json").write_text('{"packages": []}\n')
    response = _oras(push_edge).push(f"{push_edge.host}/{pushed['app']}:sbom", files=["sbom.json"], subject=subject)
    assert response.status_code == 201, response.text
    artifact = response.headers["Docker-Content-Digest"]
    listed = _regshape("referrer", "list", "-i", f"{pull_edge.host}/{pushed['app']}@{image_digest}", "--json",
                       env={**offline_env(), "HOME": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr + listed.stdout
    assert artifact in {entry["digest"] for entry in json.loads(listed.stdout)["manifests"]}


def test_oras_and_regshape_page_through_tags(push_edge, pull_edge, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "note.txt").write_text("paged\n")
    registry = _oras(push_edge)
    tags = [f"p{number}" for number in range(5)]
    for tag in tags:
        assert registry.push(f"{push_edge.host}/third/paged:{tag}", files=["note.txt"]).status_code == 201
    assert sorted(_oras(pull_edge).get_tags(f"{pull_edge.host}/third/paged")) == tags  # oras follows the Link headers

    env = {**offline_env(), "HOME": str(tmp_path)}
    first = _regshape("tag", "list", "-i", f"{pull_edge.host}/third/paged", "--n", "2", env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    assert first.stdout.split() == tags[:2]
    rest = _regshape("tag", "list", "-i", f"{pull_edge.host}/third/paged", "--n", "2", "--last", tags[1], env=env)
    assert rest.stdout.split() == tags[2:4]
