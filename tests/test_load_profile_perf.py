"""`python -m load --profile perf`: perf's samples of an edge-like process, summarised by perf's own report
(linux-perf comes from scripts/install-test-deps.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from load import profiles


def test_perf_samples_of_a_hashing_process_are_summarised_by_shared_object_and_symbol(tmp_path: Path) -> None:
    hashing = subprocess.Popen([sys.executable, "-c", "import hashlib, sys; sys.stdin.readline(); hashlib.sha256(bytes(1 << 30)).digest()"],
                               stdin=subprocess.PIPE, text=True)
    data = tmp_path / "profile.perf.data"
    recorder = subprocess.Popen(profiles.record_command("perf", hashing.pid, data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert hashing.stdin is not None
        hashing.stdin.write("go\n")
        hashing.stdin.close()
        assert hashing.wait(60) == 0
        assert recorder.wait(60) == 0  # perf record ends with the process it samples
    finally:
        hashing.kill()
        recorder.kill()
    summary = profiles.summarise_perf(data)
    assert "## By shared object" in summary and "## By symbol" in summary
    assert "libcrypto" in summary  # the sha256 of a GiB: OpenSSL's code, which py-spy would charge to the Python line
