"""Registry errors (HTTP status, OCI code) are made only in `mirror/api/` (and the CLI): every other module raises
`mirror.domain` errors, which `mirror/api/failures.py` maps in one place."""

import ast
from pathlib import Path

import mirror

ROOT = Path(mirror.__file__).parent
ALLOWED = {ROOT / "errors.py", ROOT / "cli.py"}


def _below_api() -> list[Path]:
    return [path for path in sorted(ROOT.rglob("*.py")) if path not in ALLOWED and (ROOT / "api") not in path.parents]


def _registry_error_uses(path: Path, root: Path = ROOT.parent) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        line = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module == "mirror.errors":
            found.append(f"{line}: imports mirror.errors")
        elif isinstance(node, ast.ImportFrom) and node.module == "mirror" and any(a.name == "errors" for a in node.names):
            found.append(f"{line}: imports mirror.errors")
        elif isinstance(node, ast.Import) and any(alias.name == "mirror.errors" for alias in node.names):
            found.append(f"{line}: imports mirror.errors")
        elif isinstance(node, ast.Name) and node.id == "RegistryError":
            found.append(f"{line}: RegistryError")
        elif isinstance(node, ast.Attribute) and (node.attr == "RegistryError" or (
            isinstance(node.value, ast.Name) and node.value.id == "errors"
        )):
            found.append(f"{line}: errors.{node.attr}")
    return found


def test_no_module_below_the_api_makes_a_registry_error():
    found = [use for path in _below_api() for use in _registry_error_uses(path)]
    assert found == []


def test_the_walk_finds_a_registry_error_where_there_is_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from mirror import errors\nraise errors.unavailable(OSError())\n")
    uses = _registry_error_uses(sample, tmp_path)
    assert any("imports mirror.errors" in use for use in uses) and any("errors.unavailable" in use for use in uses)
