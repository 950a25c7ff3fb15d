"""Real clients through an edge with access control: skopeo and docker (login through the Bearer challenge)
against token auth, containerd with a node credential against htpasswd."""

from __future__ import annotations

import base64
import subprocess

import bcrypt
import httpx
import pytest

from tests.support import skopeo
from tests.support.daemons import Dockerd, offline_env
from tests.support.edge import EdgeMirror, s3_storage
from tests.support.push_http import OCI_MANIFEST
from tests.support.tokens import ISSUER, SERVICE, TestCA, TokenServer, User, write_bundle

DEV = ("dev", "dev-secret")
DEAD_REGISTRY = "127.0.0.1:9"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    ca = TestCA()
    server = TokenServer(ca.leaf(), {DEV[0]: User(DEV[1], {"team/*": ["pull"], "dev/*": ["pull", "push"]})})
    server.bundle = write_bundle(tmp_path_factory.mktemp("e2e-token") / "roots.pem", ca.pem())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def token_edge(seaweed, e2e_images, token_server, tmp_path_factory):
    settings = {"realm": token_server.realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(token_server.bundle)}
    with EdgeMirror(
        tmp_path_factory.mktemp("e2e-token-edge"), s3_storage(seaweed.endpoint, "registry"),
        auth={"method": "token"}, **{"auth.token": settings},
    ) as mirror:
        yield mirror


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_skopeo_pulls_and_pushes_through_a_token_edge(token_edge, e2e_images, registry_s3, tmp_path):
    app = e2e_images["app"]
    creds = f"{DEV[0]}:{DEV[1]}"
    anonymous = _skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{token_edge.host}/team/app:v1", f"dir:{tmp_path / 'anon'}")
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower()

    pulled = _skopeo("copy", "-q", "--src-tls-verify=false", "--src-creds", creds,
                     f"docker://{token_edge.host}/team/app:v1", f"dir:{tmp_path / 'pulled'}")
    assert pulled.returncode == 0, pulled.stderr
    assert set(app.layer_digests) <= skopeo.blob_names(tmp_path / "pulled")

    pushed = _skopeo("copy", "-q", "--dest-tls-verify=false", "--dest-creds", creds,
                     f"oci:{app.layout_dir}:v1", f"docker://{token_edge.host}/dev/skopeo-app:v1")
    assert pushed.returncode == 0, pushed.stderr
    central = httpx.get(f"{registry_s3.url}/v2/dev/skopeo-app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert central.status_code == 200  # the push landed in the bucket the central registry serves

    refused = _skopeo("copy", "-q", "--dest-tls-verify=false", "--dest-creds", creds,
                      f"oci:{app.layout_dir}:v1", f"docker://{token_edge.host}/team/app:hijacked")
    assert refused.returncode != 0
    assert httpx.get(f"{registry_s3.url}/v2/team/app/manifests/hijacked").status_code == 404


@pytest.fixture(scope="module")
def token_dockerd(containerd, token_edge, tmp_path_factory):
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd-token"), containerd, token_edge.url)
    try:
        yield daemon
    finally:
        daemon.stop()


def test_docker_logs_in_through_the_challenge_then_pulls_and_pushes(token_dockerd, token_edge, e2e_images, registry_s3, tmp_path):
    app = e2e_images["app"]
    env = {**offline_env(), "DOCKER_CONFIG": str(tmp_path / "docker-config")}

    def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(token_dockerd._docker(*args), capture_output=True, text=True, timeout=300, env=env, input=stdin)

    login = docker("login", token_edge.host, "-u", DEV[0], "--password-stdin", stdin=DEV[1])
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout
    pull = docker("pull", f"{token_edge.host}/team/app:v1")
    assert pull.returncode == 0, pull.stderr
    assert docker("image", "inspect", "-f", "{{.Id}}", f"{token_edge.host}/team/app:v1").stdout.strip() == app.config_digest
    assert docker("tag", f"{token_edge.host}/team/app:v1", f"{token_edge.host}/dev/docker-app:v1").returncode == 0
    push = docker("push", f"{token_edge.host}/dev/docker-app:v1")
    assert push.returncode == 0, push.stderr
    central = httpx.get(f"{registry_s3.url}/v2/dev/docker-app/manifests/v1",
                        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert central.status_code == 200


@pytest.fixture(scope="module")
def htpasswd_edge(seaweed, e2e_images, tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-htpasswd-edge")
    (work / "htpasswd").write_text(f"node:{bcrypt.hashpw(b'node-credential', bcrypt.gensalt(rounds=5)).decode()}\n")
    with EdgeMirror(
        work, s3_storage(seaweed.endpoint, "registry"),
        auth={"method": "htpasswd"}, **{"auth.htpasswd": {"realm": "edge", "path": str(work / "htpasswd")}},
    ) as mirror:
        yield mirror


def test_containerd_pulls_through_an_htpasswd_edge_with_a_hosts_toml_header(containerd, htpasswd_edge, e2e_images):
    app = e2e_images["app"]
    assert httpx.get(f"{htpasswd_edge.url}/v2/team/app/manifests/v1").status_code == 401
    credential = base64.b64encode(b"node:node-credential").decode()
    hosts = containerd.hosts_dir(DEAD_REGISTRY, f"http://{DEAD_REGISTRY}", htpasswd_edge.url, f"Basic {credential}")
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts), f"{DEAD_REGISTRY}/team/app:v1", namespace="htpasswd")
    assert {app.manifest_digest, app.config_digest, *app.layer_digests} <= containerd.content_digests("htpasswd")
    assert htpasswd_edge.metrics().value("mirror_auth_requests_total", method="htpasswd", result="ok") >= 3
