"""Uninstall and upgrade leave every node as it was (issue 21, item 1): node-config.py's restore on scratch
certs.d trees, and the post-delete hook's wait, against a stand-in API server and a simulated node set."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.deploy.conftest import find, render
from tests.deploy.test_node_config import ORIGINAL, SCRIPT, run, write

spec = importlib.util.spec_from_file_location("node_config", SCRIPT)
node_config = importlib.util.module_from_spec(spec)
spec.loader.exec_module(node_config)  # puts its directory on sys.path: restore_wait is the module beside it
restore_wait = sys.modules["restore_wait"]

HELM_DEFAULT_TIMEOUT = 300  # seconds: `helm uninstall` waits this long for each hook unless --timeout says more


def test_a_registry_dropped_by_an_upgrade_is_restored_on_the_next_write(tmp_path):
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io/hosts.toml").write_text(ORIGINAL)
    write(tmp_path, "--registry", "docker.io", "--registry", "registry.example.com")
    write(tmp_path, "--registry", "registry.example.com")  # the upgraded release lists one registry only
    assert (tmp_path / "docker.io/hosts.toml").read_text() == ORIGINAL
    assert sorted(path.name for path in (tmp_path / "docker.io").iterdir()) == ["hosts.toml"]
    assert (tmp_path / "registry.example.com/hosts.toml").read_text().startswith(node_config.MARKER)


def test_restore_all_puts_back_every_file_the_script_wrote_and_nothing_else(tmp_path):
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io/hosts.toml").write_text(ORIGINAL)
    (tmp_path / "quay.io").mkdir()
    (tmp_path / "quay.io/hosts.toml").write_text('server = "https://quay.io"\n')  # the node's own, never ours
    write(tmp_path, "--registry", "docker.io", "--registry", "ghcr.io")
    result = run("restore", "--all", "--certs-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "docker.io/hosts.toml").read_text() == ORIGINAL
    assert not (tmp_path / "ghcr.io").exists()
    assert (tmp_path / "quay.io/hosts.toml").read_text() == 'server = "https://quay.io"\n'


def daemonset(generation: int = 1, **status: int) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("item", "done"),
    [
        (daemonset(), False),  # just created: the controller has not counted the nodes yet
        (daemonset(generation=2, observedGeneration=1, desiredNumberScheduled=3, numberReady=3,
                   updatedNumberScheduled=3), False),  # a status from before the controller saw this spec
        (daemonset(observedGeneration=1, desiredNumberScheduled=3, numberReady=2, updatedNumberScheduled=3), False),
        (daemonset(observedGeneration=1, desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=3), True),
    ],
    ids=["no-status-yet", "older-generation", "one-node-not-restored", "every-node-restored"],
)
def test_the_wait_passes_only_once_every_node_the_daemonset_targets_is_restored(item, done):
    assert restore_wait.daemonset_restored(item)[0] is done


class SimulatedRollout:
    """A restore DaemonSet over `nodes` nodes on a simulated clock: the controller creates pods in slow-start
    batches (1, 2, 4, … per second, as Kubernetes' DaemonSet controller does), each is ready `start` seconds later."""

    def __init__(self, nodes: int, start: float = 8.0, batch_cap: int = 500):
        self.nodes, self.start, self.batch_cap = nodes, start, batch_cap
        self.now = 0.0
        self.fetches = 0

    def created_by(self, time: float) -> int:
        created, batch, second = 0, 1, 1.0
        while second <= time and created < self.nodes:
            created, batch, second = min(self.nodes, created + batch), min(batch * 2, self.batch_cap), second + 1
        return created

    def status(self) -> dict[str, Any]:
        self.fetches += 1
        if self.now < 1:
            return daemonset()
        ready = self.created_by(self.now - self.start)
        return daemonset(observedGeneration=1, desiredNumberScheduled=self.nodes, numberReady=ready,
                         updatedNumberScheduled=self.created_by(self.now))

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def all_ready_at(self) -> float:
        return next(second for second in range(10_000) if self.created_by(second - self.start) == self.nodes)


@pytest.mark.parametrize("nodes", [3, 500, 5000])
def test_the_wait_over_a_simulated_node_set_ends_within_helms_default_timeout(nodes):
    timeout = find(render(), "Pod", "edge-edge-mirror-restore-wait")["spec"]["containers"][0]["command"]
    timeout = float(timeout[timeout.index("--timeout") + 1])
    rollout = SimulatedRollout(nodes)
    done, progress = restore_wait.wait_restored(rollout.status, timeout, clock=lambda: rollout.now, sleep=rollout.sleep)
    assert done, progress
    assert progress == f"{nodes}/{nodes} nodes restored"
    assert rollout.all_ready_at() <= rollout.now <= rollout.all_ready_at() + 2  # one poll interval late at most
    assert timeout + 30 <= HELM_DEFAULT_TIMEOUT  # the wait pod's own start fits in what is left
    assert rollout.fetches <= rollout.now / 2 + 2  # one GET per interval, whatever the node count


def test_a_wait_that_cannot_finish_gives_up_before_helm_does_and_says_how_to_raise_it():
    rollout = SimulatedRollout(10_000, start=400)
    done, progress = restore_wait.wait_restored(rollout.status, 240, clock=lambda: rollout.now, sleep=rollout.sleep)
    assert not done and rollout.now <= 240
    assert progress.endswith("/10000 nodes restored")


@pytest.fixture
def api_server() -> Iterator[tuple[str, list[dict[str, Any]], list[dict[str, str]]]]:
    """A stand-in for the API server's GET of one DaemonSet: answers the next queued object (the last one again)."""
    answers: list[dict[str, Any]] = []
    requests: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            requests.append({"path": self.path, "authorization": self.headers.get("Authorization", "")})
            body = json.dumps(answers.pop(0) if len(answers) > 1 else answers[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers, requests
    finally:
        server.shutdown()
        server.server_close()


def wait_args(url: str, token: Path, timeout: str) -> list[str]:
    return ["wait", "--api-server", url, "--namespace", "edge-mirror", "--daemonset", "edge-edge-mirror-restore",
            "--token-file", str(token), "--timeout", timeout]


def test_the_wait_pod_reads_the_daemonset_with_its_token_and_returns_once_restored(api_server, tmp_path):
    url, answers, requests = api_server
    (tmp_path / "token").write_text("service-account-token\n")
    answers += [daemonset(), daemonset(observedGeneration=1, desiredNumberScheduled=2, numberReady=2,
                                       updatedNumberScheduled=2)]
    result = run(*wait_args(url, tmp_path / "token", "20"))
    assert result.returncode == 0, result.stderr
    assert "2/2 nodes restored" in result.stdout
    assert requests[0] == {"path": "/apis/apps/v1/namespaces/edge-mirror/daemonsets/edge-edge-mirror-restore",
                           "authorization": "Bearer service-account-token"}


def test_the_wait_pod_fails_with_the_fix_when_the_restore_is_not_done_in_time(api_server, tmp_path):
    url, answers, _ = api_server
    answers.append(daemonset(observedGeneration=1, desiredNumberScheduled=2, numberReady=1, updatedNumberScheduled=2))
    result = run(*wait_args(url, tmp_path / "no-token", "1"))
    assert result.returncode == 1
    assert "1/2 nodes restored" in result.stderr and "helm uninstall --timeout" in result.stderr
