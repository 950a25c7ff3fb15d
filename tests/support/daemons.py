"""containerd and dockerd as real daemons with private root, state and sockets in a temp directory.

Both get ``HTTPS_PROXY``/``HTTP_PROXY`` pointing at a closed loopback port (``NO_PROXY`` for loopback), so any
fallback to a public registry fails at once on loopback instead of reaching for the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.support import examples
from tests.support.processes import Server

DEAD_PROXY = "http://127.0.0.1:9"
NODE_CONFIG = Path(__file__).resolve().parents[2] / "deploy/helm/edge-mirror/files/node-config.py"


def node_config(*args: str) -> str:
    """Run the chart's node-config script (what the init container runs on every node); its stdout."""
    result = subprocess.run([sys.executable, str(NODE_CONFIG), *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"node-config.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def offline_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    env.update({"HTTPS_PROXY": DEAD_PROXY, "HTTP_PROXY": DEAD_PROXY, "NO_PROXY": "127.0.0.1,localhost,::1"})
    return env


def _wait_socket(server: Server, socket_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.argv[0]} exited:\n{server.log_tail()}")
        if socket_path.exists():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{server.argv[0]} socket {socket_path} did not appear:\n{server.log_tail()}")


class Containerd:
    def __init__(self, workdir: Path) -> None:
        if shutil.which("containerd") is None:
            raise RuntimeError("containerd is missing: apt-get install containerd")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.socket = workdir / "containerd.sock"
        config = workdir / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{workdir / "root"}"\n'
            f'state = "{workdir / "state"}"\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{workdir / "containerd.ttrpc.sock"}"\n'
            '[debug]\n  address = ""\n'
            '[metrics]\n  address = ""\n'
        )
        self.server = Server(["containerd", "--config", str(config)], workdir / "containerd.log", env=offline_env())
        _wait_socket(self.server, self.socket, 30)
        self.ctr("version")

    def ctr(self, *args: str, namespace: str = "default", timeout: float = 300) -> str:
        result = subprocess.run(
            ["ctr", "-a", str(self.socket), "-n", namespace, *args],
            capture_output=True, text=True, timeout=timeout, env=offline_env(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def hosts_dir(self, registry_host: str, server: str, mirror_url: str, authorization: str | None = None) -> Path:
        """A ``certs.d`` tree whose ``hosts.toml`` for `registry_host` sends pull and resolve to the mirror, with an
        ``Authorization`` header for it when given.

        Written by the Helm chart's own node-config script, so these pulls prove the files nodes get.
        """
        directory = self.workdir / f"certs.d-{abs(hash((registry_host, mirror_url, authorization)))}"
        args = ["write", "--certs-dir", str(directory), "--registry", f"{registry_host}={server}", "--edge", mirror_url]
        if authorization is not None:
            secret = directory.with_name(directory.name + ".authorization")  # as the chart mounts the Secret's key
            secret.write_text(authorization)
            args += ["--authorization-file", str(secret)]
        node_config(*args)
        return directory

    def content_digests(self, namespace: str = "default") -> set[str]:
        lines = self.ctr("content", "ls", "-q", namespace=namespace).split()
        return set(lines)

    def stop(self) -> None:
        self.server.stop()


class Dockerd:
    def __init__(self, workdir: Path, containerd: Containerd, mirror_url: str) -> None:
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is missing: apt-get install docker.io")
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "docker.sock"
        mirror_host = mirror_url.split("://", 1)[1]
        config = workdir / "daemon.json"
        settings = orjson.loads(examples.text("daemon.json", mirror_host))  # the shipped example, then test-only keys
        settings.update(
            {
                "iptables": False, "ip6tables": False, "bridge": "none", "storage-driver": "vfs",
                "data-root": str(workdir / "root"), "exec-root": str(workdir / "exec"),
                "pidfile": str(workdir / "docker.pid"), "hosts": [f"unix://{self.socket}"],
            }
        )
        config.write_bytes(orjson.dumps(settings))
        self.server = Server(
            ["dockerd", "--config-file", str(config), "--containerd", str(containerd.socket)],
            workdir / "dockerd.log",
            env=offline_env(),
        )
        _wait_socket(self.server, self.socket, 60)
        deadline = time.monotonic() + 60
        while subprocess.run(self._docker("version"), capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer:\n{self.server.log_tail()}")
            time.sleep(0.3)

    def _docker(self, *args: str) -> list[str]:
        return ["docker", "-H", f"unix://{self.socket}", *args]

    def docker(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self._docker(*args), capture_output=True, text=True, timeout=timeout, env=offline_env())
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def inspect(self, reference: str) -> dict:
        return orjson.loads(self.docker("image", "inspect", reference).stdout)[0]

    def stop(self) -> None:
        self.server.stop(timeout=20)
