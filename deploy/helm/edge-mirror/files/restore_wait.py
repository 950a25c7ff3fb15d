"""``helm uninstall``'s wait for every node's restore (node-config.py ``done`` and ``wait``): each restore pod
answers on a port once its node is restored (its readiness), and the wait pod polls the restore DaemonSet's
status on the API server until every node it targets has a ready pod. Standard library only."""

from __future__ import annotations

import http.server
import json
import os
import socket
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class _Done(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve_done(port: int) -> None:
    """Answer 200 to every GET on `port` (IPv6 and IPv4 pod addresses), forever: this node's restore has run."""
    try:
        server: http.server.ThreadingHTTPServer = _DualStackServer(("::", port), _Done)
    except OSError:  # a pod without IPv6
        server = http.server.ThreadingHTTPServer(("", port), _Done)
    server.serve_forever()


def daemonset_restored(daemonset: dict[str, Any]) -> tuple[bool, str]:
    """Whether every node the restore DaemonSet should run on has a ready pod (ready = its restore has run), and
    a progress line. Never true before the DaemonSet controller has looked at this generation of it: a status
    that is not there yet, or that counts only the pods made so far, does not pass."""
    generation = daemonset.get("metadata", {}).get("generation", 0)
    status = daemonset.get("status", {})
    desired = status.get("desiredNumberScheduled", 0)
    ready = status.get("numberReady", 0)
    updated = status.get("updatedNumberScheduled", 0)
    observed = status.get("observedGeneration", 0)
    done = generation > 0 and observed >= generation and ready == desired and updated == desired
    return done, f"{ready}/{desired} nodes restored"


def in_cluster_api() -> str:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def daemonset_fetcher(api: str, namespace: str, name: str, token_file: Path | None,
                      ca_file: Path | None) -> Callable[[], dict[str, Any]]:
    """GET the DaemonSet from the API server (the token is re-read each time: projected tokens rotate)."""
    url = f"{api.rstrip('/')}/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file and ca_file.exists() else None

    def fetch() -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if token_file and token_file.exists():
            headers["Authorization"] = f"Bearer {token_file.read_text().strip()}"
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10,
                                    context=context if url.startswith("https") else None) as response:
            return json.loads(response.read())

    return fetch


def wait_restored(fetch: Callable[[], dict[str, Any]], timeout: float, interval: float = 2.0,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> tuple[bool, str]:
    """Poll `fetch` until the DaemonSet reports every node restored, or `timeout` seconds have passed."""
    deadline = clock() + timeout
    progress = "no answer from the API server yet"
    while True:
        try:
            done, progress = daemonset_restored(fetch())
            if done:
                return True, progress
        except (OSError, ValueError) as error:
            progress = f"{progress}; last API error: {error}"
        if clock() + interval > deadline:
            return False, progress
        sleep(interval)
