"""Type checking of `mirror/` (issue 22, item 7): mypy, configured by pyproject's ``[tool.mypy]`` (strict), passes,
and every ``type: ignore`` left in the package says why on its line."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)")


def test_mypy_passes_over_the_package() -> None:
    """``python3 -m mypy`` with no arguments: files and flags all come from pyproject."""
    run = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, f"mypy failed:\n{run.stdout}{run.stderr}"


def test_the_diskcache_stub_matches_the_installed_diskcache() -> None:
    """``typings/diskcache`` types the part of diskcache the edge uses (it ships no types); mypy's stubtest holds
    each name and signature there equal to the installed package (the parts the stub leaves out are allowed)."""
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "diskcache", "--ignore-missing-stub",
         "--mypy-config-file", "pyproject.toml"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, f"typings/diskcache differs from diskcache:\n{run.stdout}{run.stderr}"


def test_every_type_ignore_has_its_reason_on_the_line() -> None:
    """``# type: ignore[code]  # why`` — a bare ignore hides an error without telling the next reader what
    would break without it."""
    found = []
    for path in sorted((ROOT / "mirror").rglob("*.py")):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        for token in tokens:
            match = IGNORE.match(token.string) if token.type == tokenize.COMMENT else None
            if match and not re.match(r"\s*#\s*\S", match.group("rest")):
                found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {token.string}")
    assert found == []
