"""The README's configuration blocks are the declarations in mirror/config/settings.py, printed."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from mirror.config import load
from mirror.config.reference import render

README = Path(__file__).resolve().parents[2] / "README.md"


def _toml_block(heading: str) -> str:
    """The first ```toml block after the README heading `heading`."""
    section = README.read_text().split(f"\n{heading}\n", 1)[1]
    return section.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_readme_configuration_block_is_what_python_m_mirror_config_prints():
    printed = subprocess.run([sys.executable, "-m", "mirror.config"], capture_output=True, text=True, check=True, timeout=60)
    assert _toml_block("## Configuration") == printed.stdout


def test_the_readme_upstream_example_is_the_declared_one():
    assert _toml_block("## Remote registries behind the bucket (Docker Hub and friends)") == render("upstream")


def test_the_readme_configuration_block_loads_as_the_defaults(tmp_path: Path):
    file = tmp_path / "mirror.toml"
    file.write_text(_toml_block("## Configuration"))
    from_readme = load(file, environ={})
    assert [endpoint.name for endpoint in from_readme.notifications] == ["region-b"]  # the block's example
    assert replace(from_readme, notifications=()) == load(None, environ={})


def test_the_readme_upstream_example_loads(tmp_path: Path):
    file = tmp_path / "mirror.toml"
    file.write_text(_toml_block("## Remote registries behind the bucket (Docker Hub and friends)"))
    (route,) = load(file, environ={}).upstreams
    assert (route.ns, route.prefix, route.default) == ("docker.io", "dockerhub", True)
