"""Start a server process with its output in a log file, wait until it answers over HTTP, stop it cleanly.

Every server runs in its own session (process group), so `stop` also reaches any children it spawned. Servers
still running when the interpreter exits (an interrupted test run, a fixture that never reached its teardown) are
killed by an ``atexit`` hook; servers started from the main thread also get ``PR_SET_PDEATHSIG=SIGKILL``, so they
die with the test process even when that is killed outright (a CI timeout's SIGTERM or SIGKILL skips ``atexit``).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping

from tests.support import tier
from tests.support.ports import free_port

__all__ = ["Server", "free_port", "http_status", "start"]

# Loopback only: never route the readiness probe through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_live: set["Server"] = set()

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child between fork and exec: get SIGKILL when the parent dies (kept across exec)."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status `url` answers a GET with, or None when nothing answers (refused, reset, timed out)."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


class Server:
    """A subprocess whose stdout and stderr go to `log_path`, in a process group of its own."""

    def __init__(
        self,
        argv: list[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        tier.refuse_server(f"starting {argv[0]}")
        self.argv = [str(arg) for arg in argv]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                # The death signal fires when the forking *thread* ends, so only tie servers to the main thread.
                preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
            )
        self.started_at = time.monotonic()
        _live.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_http(self, url: str, timeout: float, ok: Iterable[int] = (200,)) -> float:
        """Poll `url` until it answers with a status in `ok`; returns the seconds since the process started.

        Raises RuntimeError with the log tail if the process exits first or `timeout` passes (the process is
        stopped in both cases).
        """
        accepted = set(ok)
        deadline = time.monotonic() + timeout
        last: int | None = None
        while True:
            if not self.running:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(f"{self.name} exited with {code} before {url} answered:\n{self.log_tail()}")
            last = http_status(url, timeout=1.0)
            if last in accepted:
                return time.monotonic() - self.started_at
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} did not answer {url} with {sorted(accepted)} within {timeout}s "
                    f"(last answer: {last}):\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, then SIGKILL it if the server has not exited after `timeout` seconds."""
        _live.discard(self)
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=30)
        # Children that outlived the leader belong to the same group; the group id stays ours until they exit.
        self._signal(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the process group at once and reap the leader."""
        _live.discard(self)
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def name(self) -> str:
        return Path(self.argv[0]).name

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log file."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Server(pid={self.process.pid}, argv={self.argv[:3]!r}...)"


def start(
    argv: list[str],
    log_path: Path,
    url: str | None = None,
    timeout: float = 30,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ok: Iterable[int] = (200,),
) -> Server:
    """Start `argv` with its output in `log_path`; when `url` is given, wait until it answers with a status in `ok`."""
    server = Server(argv, log_path, env=env, cwd=cwd)
    if url is not None:
        server.wait_http(url, timeout=timeout, ok=ok)
    return server


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        server.kill()
