"""`python -m load --profile [py-spy|perf]`: the profiler is checked before anything runs (perf's own summary is
tested in tests/test_load_profile_perf.py, outside the fast tier: it needs Debian's linux-perf)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from load.__main__ import main


def test_a_profiler_that_is_not_installed_is_refused_before_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as stopped:
        main(["--quick", "--only", "cost", "--profile", "perf", "--out", str(tmp_path)])
    assert stopped.value.code == 2
    assert "--profile perf: perf is not installed" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing started, nothing written
