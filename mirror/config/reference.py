"""The README's configuration blocks, written from the declarations in `settings.py`: every ``[section]`` with
its keys, defaults and help, then an example of each ``[[table]]`` (``[[upstream]]`` has a block of its own, in
the README's "Remote registries" section). ``python -m mirror.config`` prints them; tests/unit/test_config_reference.py
checks that the README holds them."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from mirror.config import schema
from mirror.config.settings import Config

# The ``[[tables]]`` shown in a block of their own, and the column their comments start at there.
OWN_BLOCKS = {"upstream": 39}
COMMENT_COLUMN = 33


def toml_value(value: Any) -> str:
    """The TOML spelling of a default: strings, numbers, booleans, arrays and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{name} = {toml_value(item)}" for name, item in value.items()) + "}"
    raise TypeError(f"no TOML spelling for {value!r}")


def _line(text: str, help: str, column: int) -> Iterator[str]:
    """`text`, then the help's first line as a comment at `column`; its other lines on lines of their own."""
    if not help:
        yield text
        return
    first, *more = help.split("\n")
    yield f"{text.ljust(max(column, len(text) + 2))}# {first}"
    yield from (f"{'':{column}}# {line}" for line in more)


def _table(heading: str, cls: type, help: str, chosen: Mapping[str, Any], column: int = COMMENT_COLUMN) -> list[str]:
    """The heading, then one line per key; keys of one sub-table (``ignore.actions``) together as an inline table,
    with the first one's help."""
    entries: dict[str, tuple[Any, str]] = {}
    for _, setting in schema.settings_of(cls):
        value = chosen.get(setting.name, setting.default if setting.shown is None else setting.shown)
        head, _, inner = setting.name.rpartition(".")
        if head:
            entries.setdefault(head, ({}, setting.help))[0][inner] = value
        else:
            entries[setting.name] = (value, setting.help)
    lines = list(_line(heading, help, column))
    for name, (value, key_help) in entries.items():
        lines += _line(f"{name} = {toml_value(value)}", key_help, column)
    return lines


def render(block: str = "") -> str:
    """The configuration block (without the fence), or with `block` the ``[[block]]`` example of OWN_BLOCKS."""
    lines: list[str] = []
    if not block:
        for path, cls, help in schema.sections(Config):
            lines += _table(f"[{path}]", cls, help, {})
    for _, name, cls, help, example in schema.array_tables(Config):
        wanted = name == block if block else name not in OWN_BLOCKS
        if wanted and example is not None:
            lines += _table(f"[[{name}]]", cls, help, example, OWN_BLOCKS.get(name, COMMENT_COLUMN))
    return "\n".join(lines) + "\n"
