"""podman and buildah (Debian 12: podman 4.3, buildah 1.28) with everything they keep under one work directory.

Each `ContainerTools` writes its own ``storage.conf`` (vfs driver, graph root and run root under the work
directory), ``containers.conf`` (cgroupfs, events to a file, its own tmp and network config dirs),
``registries.conf`` and auth file, and passes them through ``CONTAINERS_STORAGE_CONF``, ``CONTAINERS_CONF``,
``CONTAINERS_REGISTRIES_CONF`` and ``REGISTRY_AUTH_FILE``, with ``HOME`` and ``XDG_*`` pointed at the work
directory too: the machine's own containers storage and config are never read or written, and a test run can
be repeated. One piece of state has no setting: as root, containers/image keeps its blob info cache (which
registry repositories hold which blob; the source of cross-repository mounts) in /var/lib/containers/cache,
whatever the storage root. Each command therefore runs in its own mount namespace (``unshare --mount``) with the
work directory's ``blob-info-cache`` bound over that path; only the empty mount point is created on the machine.
Images are built FROM scratch from local files only (no network).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

from tests.support.daemons import offline_env

__all__ = ["ContainerTools", "DEAD_REGISTRY", "build_context"]

GLOBAL_BLOB_INFO_CACHE = "/var/lib/containers/cache"
DEAD_REGISTRY = "127.0.0.1:9"  # nothing listens on the discard port: a pull that succeeds came from the mirror


def _missing(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


class ContainerTools:
    """podman and buildah sharing one private containers storage under `workdir`."""

    def __init__(self, workdir: Path, registries_conf: str = 'unqualified-search-registries = []\n') -> None:
        missing = _missing("podman", "buildah", "unshare")
        if missing:
            raise RuntimeError(f"{', '.join(missing)} missing: scripts/install-test-deps.sh installs them")
        self.workdir = Path(workdir)
        Path(GLOBAL_BLOB_INFO_CACHE).mkdir(parents=True, exist_ok=True)  # the mount point only; never written
        for name in ("root", "runroot", "tmp", "networks", "home", "xdg-runtime", "xdg-config", "blob-info-cache"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        (self.workdir / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.workdir / "root"}"\nrunroot = "{self.workdir / "runroot"}"\n'
        )
        (self.workdir / "containers.conf").write_text(
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{self.workdir / "events.log"}"\ntmp_dir = "{self.workdir / "tmp"}"\n'
            f'[network]\nnetwork_config_dir = "{self.workdir / "networks"}"\n'
        )
        (self.workdir / "registries.conf").write_text(registries_conf)
        self.auth_file = self.workdir / "auth.json"
        self.auth_file.write_text('{"auths": {}}\n')  # podman refuses a REGISTRY_AUTH_FILE that does not exist
        self.env = {
            **offline_env(),
            "CONTAINERS_STORAGE_CONF": str(self.workdir / "storage.conf"),
            "CONTAINERS_CONF": str(self.workdir / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.workdir / "registries.conf"),
            "REGISTRY_AUTH_FILE": str(self.auth_file),
            "HOME": str(self.workdir / "home"),
            "XDG_RUNTIME_DIR": str(self.workdir / "xdg-runtime"),
            "XDG_CONFIG_HOME": str(self.workdir / "xdg-config"),
        }

    def run(self, tool: str, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        isolated = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" ' + GLOBAL_BLOB_INFO_CACHE + ' && exec "$@"', str(self.workdir / "blob-info-cache")]
        result = subprocess.run(
            [*isolated, tool, *args], capture_output=True, text=True, timeout=300, env=self.env, input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def podman(self, *args: str, **options) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *args, **options)

    def buildah(self, *args: str, **options) -> subprocess.CompletedProcess[str]:
        return self.run("buildah", *args, **options)

    def login(self, tool: str, host: str, user: str, password: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(tool, "login", "--tls-verify=false", "-u", user, "--password-stdin", host, stdin=password, check=check)


def build_context(directory: Path, seed: int) -> Path:
    """A build context FROM scratch: two random files and one per target architecture, so each platform's
    image differs; three COPY instructions, three layers."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "a.bin").write_bytes(rng.randbytes(300_000))
    (directory / "b.bin").write_bytes(rng.randbytes(120_000))
    for arch in ("amd64", "arm64"):
        (directory / f"{arch}.txt").write_text(f"built for {arch} ({seed})\n")
    (directory / "Containerfile").write_text(
        "FROM scratch\nARG TARGETARCH\nCOPY a.bin /a.bin\nCOPY b.bin /b.bin\nCOPY ${TARGETARCH}.txt /arch.txt\n"
    )
    return directory
