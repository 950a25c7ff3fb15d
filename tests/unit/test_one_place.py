"""Facts kept in one place (issue 22, item 5), checked over the source so a second copy fails here."""

import ast
from pathlib import Path

MIRROR = Path(__file__).resolve().parents[2] / "mirror"
CONTENT_RANGE = {"content-range", "contentrange"}


def _modules():
    paths = sorted(MIRROR.rglob("*.py"))
    assert len(paths) > 50, f"no package at {MIRROR}"
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.parent = node  # type: ignore[attr-defined]  # a back link for the walk below
        yield path.relative_to(MIRROR.parent), tree


def test_digests_are_compared_only_in_mirror_digests():
    """Every check of bytes against a digest goes through `mirror.digests.check` (one failure type)."""
    found = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and str(path) != "mirror/digests.py":
                sides = [ast.unparse(side) for side in (node.left, *node.comparators)]
                if any(side.endswith(".hex") or "hexdigest()" in side for side in sides):
                    found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_every_content_range_read_goes_to_the_one_parser():
    """A Content-Range value read from a response or request is handed to `parse_content_range` as it is
    (or only quoted in a message), never taken apart where it is read."""
    found = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"):
                continue
            key = node.args[0] if node.args else None
            if not (isinstance(key, ast.Constant) and str(key.value).lower() in CONTENT_RANGE):
                continue
            parent = node.parent
            if isinstance(parent, ast.Assign):  # a name first: follow it to its one use
                parent = _use_of(tree, parent.targets[0])
            parsed = isinstance(parent, ast.Call) and ast.unparse(parent.func).endswith("parse_content_range")
            if not parsed and not isinstance(parent, ast.FormattedValue):
                found.append(f"{path}:{node.lineno}: {ast.unparse(parent)}")
    assert found == []


def _use_of(tree, target):
    name = ast.unparse(target)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(ast.unparse(arg) == name for arg in node.args):
            if ast.unparse(node.func).endswith("parse_content_range"):
                return node
    return target
