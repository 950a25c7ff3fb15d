"""The harness's robustness: a comparator's failure leaves its figures blank with the reason and never loses the
edge's; results.json and results.md are written whether or not matplotlib (the `bench` extra) is installed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest

from load import report
from load.client import PullFailed
from load.comparators import Comparators

MANIFEST_UNKNOWN = 'GET http://127.0.0.1:1/v2/bench/cold-0/manifests/v1: 404 b\'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}\''


class _Flaky:
    """A pull that fails `failures` times, then answers `value`."""

    def __init__(self, failures: int, value: float = 1.5, error: Exception | None = None) -> None:
        self.failures = failures
        self.value = value
        self.error = error or PullFailed(MANIFEST_UNKNOWN)
        self.calls = 0

    async def __call__(self) -> float:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.value


def test_a_comparator_pull_that_fails_once_is_pulled_again_as_a_user_would() -> None:
    others = Comparators(pause=0)
    pull = _Flaky(failures=1)
    assert asyncio.run(others.run("registry_proxy", pull)) == 1.5
    assert pull.calls == 2
    assert others.errors == {} and others.retries == {"registry_proxy": 1}


def test_a_comparator_that_keeps_failing_is_left_blank_with_its_reason() -> None:
    others = Comparators(attempts=3, pause=0)
    pull = _Flaky(failures=10)
    assert asyncio.run(others.run("registry_proxy", pull)) is None
    assert pull.calls == 3
    assert others.summary()["comparator_errors"] == {"registry_proxy": [f"PullFailed: {MANIFEST_UNKNOWN}"]}


def test_a_comparator_timeout_is_recorded_without_retrying() -> None:
    others = Comparators(pause=0)
    pull = _Flaky(failures=10, error=asyncio.TimeoutError())
    assert asyncio.run(others.run("registry_direct", pull)) is None
    assert pull.calls == 1
    assert others.errors["registry_direct"] == ["TimeoutError: "]


def _cold_results() -> dict:
    nan = float("nan")
    return {"mode": "quick", "started": "20260101T000000Z", "link": {}, "cold_pull": {
        "seconds": {"edge": 2.0, "registry_direct": 9.0, "registry_proxy": nan},
        "speedup_vs_registry_direct": 4.5, "speedup_vs_registry_proxy": nan,
        "comparator_errors": {"registry_proxy": [f"PullFailed: {MANIFEST_UNKNOWN} (running; log: )"] * 2},
    }}


def test_results_md_keeps_the_edge_figures_and_says_why_a_comparator_is_blank() -> None:
    text = report.markdown(_cold_results())
    assert "| `cold_pull.speedup_vs_registry_direct` | 4.5 |" in text
    assert "| `cold_pull.speedup_vs_registry_proxy` | — |" in text
    assert "- cold_pull: registry_proxy failed 2×, its figures left blank: PullFailed: GET" in text
    assert "MANIFEST_UNKNOWN" in text
    assert "**cold_pull failed**" not in text


def test_results_are_written_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    written = report.write(_cold_results(), tmp_path)
    assert written == [tmp_path / "results.json", tmp_path / "results.md"]
    assert orjson.loads((tmp_path / "results.json").read_bytes())["cold_pull"]["seconds"]["edge"] == 2.0
    assert "No plots: " in (tmp_path / "results.md").read_text()


def test_a_run_without_matplotlib_says_so_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "matplotlib" in (report.missing_plotting() or "")
