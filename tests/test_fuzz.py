"""The request-level fuzzer (`load/fuzz.py`) against a live edge process: a few thousand hostile requests, not one
5xx, and the edge's memory stays bounded. (Outside CI it runs with ≥ 10^5 requests: see load/README.md.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.edge import REPO_ROOT

REQUESTS = 2500
RSS_LIMIT_MIB = 300


def test_fuzzed_requests_never_get_a_5xx_and_memory_stays_bounded():
    result = subprocess.run(
        [sys.executable, "-m", "load.fuzz", "--requests", str(REQUESTS), "--seconds", "240", "--seed", "11",
         "--rss-limit-mib", str(RSS_LIMIT_MIB)],
        capture_output=True, text=True, timeout=400, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    print(summary)
    assert summary["fivexx"] == 0, summary["first_5xx"]
    assert summary["requests"] >= REQUESTS // 2
    assert summary["answers"].get("4xx", 0) > summary["requests"] // 4  # the requests really were hostile
    assert 0 < summary["rss_mib"]["peak"] < RSS_LIMIT_MIB
    assert result.returncode == 0, result.stderr[-2000:]
