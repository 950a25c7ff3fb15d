"""Child processes on loopback ports, and the guarantee that every one of them is gone when the harness exits.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only the harness, which then stops the
children in order) and is remembered in `_LIVE`; `stop_all` runs from `finally`, `atexit` and SIGTERM/SIGHUP.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

GRPC_OFFSET = 10000  # SeaweedFS also listens on every HTTP port + 10000
_issued: set[int] = set()
_lock = threading.Lock()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port below 55535 whose port + 10000 is free too, never handed out twice by this process."""
    with _lock:
        for _ in range(1000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            taken = _issued | {issued + GRPC_OFFSET for issued in _issued} | {issued - GRPC_OFFSET for issued in _issued}
            if port + GRPC_OFFSET > 65535 or port in taken or not _bindable(port + GRPC_OFFSET):
                continue
            _issued.add(port)
            return port
    raise RuntimeError("no free loopback port pair (port, port+10000)")


class Process:
    """One child process with its output in a log file."""

    def __init__(self, argv: Sequence[str], log: Path, *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                 unset_env: Iterable[str] = ()) -> None:
        environment = dict(os.environ if env is None else env)
        for name in unset_env:
            environment.pop(name, None)
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.argv = list(argv)
        with open(log, "ab") as output:
            self.popen = subprocess.Popen(
                self.argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=cwd, env=environment, start_new_session=True,
            )
        self.pid = self.popen.pid
        _LIVE.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float, ok: Iterable[int] = (200,)) -> None:
        """Poll `url` until it answers one of `ok`; raise with the log tail if the process dies or time runs out."""
        accepted = set(ok)
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"{self.argv[0]} exited with {self.popen.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status in accepted:
                        return
            except urllib.error.HTTPError as error:
                if error.code in accepted:
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.argv[0]} not ready at {url} after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the child's process group, then SIGKILL if it lingers."""
        if self in _LIVE:
            _LIVE.remove(self)
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)


_LIVE: list[Process] = []


def dead() -> list[str]:
    """What each started process that exited on its own said last (a scenario that failed may have lost one)."""
    return [f"{process.argv[0]} exited with {process.popen.returncode}:\n{process.log_tail()}"
            for process in _LIVE if not process.alive()]


def stop_all() -> None:
    """Stop every child still running, newest first."""
    for process in reversed(list(_LIVE)):
        try:
            process.stop(timeout=5)
        except Exception:  # noqa: BLE001 - teardown must reach every child
            pass


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`, then atexit


def install_teardown() -> None:
    """Make SIGTERM/SIGHUP unwind like Ctrl-C does, and stop every child at exit whatever happens."""
    atexit.register(stop_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` now (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples a process's RSS every `interval` seconds in a thread, keeping the peak (a bounded loop: it
    stops when asked, when the process exits, or after `limit` seconds)."""

    def __init__(self, pid: int, interval: float = 0.02, limit: float = 1800) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self.baseline = self.peak
        self._stop = threading.Event()
        self._interval = interval
        self._limit = limit
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit
        while not self._stop.wait(self._interval) and time.monotonic() < deadline:
            now = rss_bytes(self.pid)
            if now == 0:
                return
            self.peak = max(self.peak, now)


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process `pid` (every thread) and of its child processes (nginx's workers)
    so far, from /proc; (0, 0) once it is gone. System time is the kernel working for it: copies into and out of
    the page cache and sockets, page faults, the network stack."""
    try:
        children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    user = system = 0
    for one in (pid, *children):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children so far (`cpu_times`)."""
    return sum(cpu_times(pid))
