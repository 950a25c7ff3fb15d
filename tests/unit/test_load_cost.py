"""The cost scenario's pure parts: CPU per GiB from two readings, pinning a process's threads, and the report."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from load import report
from load.procs import cpu_times
from load.scenarios_cost import Meter, pin

GIB = 2**30


def test_a_step_is_cpu_seconds_per_gib_moved_and_the_share_of_a_core() -> None:
    before = {"cpu": {"edge": (6.0, 4.0), "seaweedfs": (5.0, 0.0), "reader": (1.0, 0.0)}, "wall": 100.0}
    after = {"cpu": {"edge": (6.5, 5.0), "seaweedfs": (5.5, 0.0), "reader": (1.25, 0.0)}, "wall": 102.0}
    step = Meter.step(before, after, GIB // 2)
    assert step["cpu_seconds_per_gib"] == {"edge": 3.0, "seaweedfs": 1.0, "reader": 0.5}
    assert step["system_seconds_per_gib"] == {"edge": 2.0, "seaweedfs": 0.0, "reader": 0.0}
    assert step["cores_busy"] == {"edge": 0.75, "seaweedfs": 0.25, "reader": 0.125}
    assert step["busiest"] == "edge"
    assert math.isclose(step["megabytes_per_second"], GIB / 2 / 2 / 1e6)


def test_pin_puts_every_thread_of_a_process_on_one_core_and_back() -> None:
    code = "import threading, time; [threading.Thread(target=time.sleep, args=(30,), daemon=True).start() for _ in range(3)]; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while len(list(Path(f"/proc/{child.pid}/task").iterdir())) < 4:  # its main thread and three more
            assert time.monotonic() < deadline, "the child did not start its threads"
            time.sleep(0.01)
        pin(child.pid, {0})
        tasks = [int(task.name) for task in Path(f"/proc/{child.pid}/task").iterdir()]
        assert {frozenset(os.sched_getaffinity(task)) for task in tasks} == {frozenset({0})}
        pin(child.pid, None)
        assert {frozenset(os.sched_getaffinity(task)) for task in tasks} == {frozenset(range(os.cpu_count() or 1))}
    finally:
        child.kill()
        child.wait()


def _results() -> dict:
    step = {"megabytes_per_second": 120.0, "cpu_seconds_per_gib": {"edge": 4.2, "seaweedfs": 1.1},
            "cores_busy": {"edge": 0.98, "seaweedfs": 0.3}, "busiest": "edge"}
    return {"mode": "quick", "started": "20260101T000000Z", "link": {}, "cost": {
        "blob_bytes": 32 << 20, "pinned_core": 0, "edge_bucket": {"unpinned": step, "pinned": step},
        "cpu_seconds_per_gib": {"edge_cold_link": 6.4, "edge_warm": 0.15, "registry_proxy_cold": None},
        "system_seconds_per_gib": {"edge_cold_link": 3.2, "edge_warm": 0.14, "registry_proxy_cold": None},
        "pinned_over_unpinned": {"bucket": 0.8}}}


def test_results_md_has_the_cost_table_and_the_pinned_fills() -> None:
    text = report.markdown(_results())
    assert "| `cost.cpu_seconds_per_gib.edge_cold_link` | 6.4 | ≤ 1.5 | **no** |" in text
    assert "| `cost.cpu_seconds_per_gib.edge_warm` | 0.15 | ≤ 0.2 | yes |" in text
    assert "| edge_cold_link | 6.4 | 3.2 |" in text
    assert "| registry_proxy_cold | — | — |" in text
    assert "| edge_bucket pinned | 120 | 4.2 | edge 0.98, seaweedfs 0.3 | edge |" in text


def test_a_process_that_copies_into_the_page_cache_is_counted_in_system_time(tmp_path) -> None:
    code = ("import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600); block = bytes(1 << 20)\n"
            "for _ in range(2048): os.pwrite(fd, block, 0)\n"
            "print(flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "f")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()  # its 2 GiB of writes are done; it waits
        user, system = cpu_times(child.pid)
        assert system > user  # a loop of pwrite calls is the kernel's work
    finally:
        child.kill()
        child.wait()
    assert cpu_times(child.pid) == (0.0, 0.0)  # gone
