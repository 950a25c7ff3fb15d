"""The one declaration of every setting: a dataclass field made by `key()` carries its key name, its default as
written in TOML, the parser that checks it (and names the key in its error) and its help line. Sections are
dataclass fields made by `section()`, arrays of tables (``[[upstream]]``) by `tables()`. From these the loader
derives the defaults, the ``MIRROR_*`` names, the unknown-key checks and the parsing, and `reference.py` the
README's configuration block; nothing else lists the keys."""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, Callable, Iterator, Mapping

Parser = Callable[[str, Any], Any]  # (dotted key, raw value) -> typed value; raises ConfigError naming the key
_KEY, _SECTION, _TABLES = "mirror.key", "mirror.section", "mirror.tables"


@dataclass(frozen=True)
class Setting:
    name: str  # the key as written in TOML (``self``), also the last part of its MIRROR_ name
    default: Any  # as written in TOML; None or "" with an optional kind: unset, derived in validate.py
    parse: Parser
    help: str  # the README's comment (lines after the first are continuation lines)
    shown: Any  # what the README shows as the value when it is not `default` (a derived default)


def key(default: Any, parse: Parser, help: str = "", *, name: str = "", value: Any = MISSING, shown: Any = None,
        required: bool = False, secret: bool = False) -> Any:
    """A setting. Its Python default (for code that builds the dataclass itself) is `parse(default)`, or `value`
    when the default is derived at load; `required` settings (in ``[[tables]]``) have none."""
    metadata = {_KEY: Setting(name, default, parse, help, shown)}
    if required:
        return field(metadata=metadata, repr=not secret)
    return field(default=parse("default", default) if value is MISSING else value, metadata=metadata, repr=not secret)


def section(cls: type, help: str = "") -> Any:
    """A ``[table]`` of settings (a dataclass of `key()` fields and nested `section()` fields)."""
    return field(default_factory=cls, metadata={_SECTION: (cls, help)})


def tables(name: str, cls: type, help: str = "", example: Mapping[str, Any] | None = None) -> Any:
    """An array of tables, ``[[name]]``, each one a `cls`; the README's block shows `example` (keys not in it
    with their defaults) when there is one."""
    return field(default=(), metadata={_TABLES: (name, cls, help, example)})


def settings_of(cls: type) -> Iterator[tuple[Field[Any], Setting]]:
    for item in fields(cls):
        if _KEY in item.metadata:
            setting = item.metadata[_KEY]
            yield item, setting if setting.name else replace(setting, name=item.name)


def sections(cls: type, path: str = "") -> Iterator[tuple[str, type, str]]:
    """Every ``[section]`` under `cls` as (dotted path, dataclass, help), parents before children."""
    for item in fields(cls):
        if _SECTION in item.metadata:
            child, help = item.metadata[_SECTION]
            dotted = f"{path}.{item.name}" if path else item.name
            yield dotted, child, help
            yield from sections(child, dotted)


def array_tables(cls: type) -> Iterator[tuple[str, str, type, str, Mapping[str, Any] | None]]:
    """Every ``[[name]]`` of `cls` as (attribute, name, dataclass, help, example)."""
    for item in fields(cls):
        if _TABLES in item.metadata:
            yield (item.name, *item.metadata[_TABLES])


def defaults(cls: type) -> dict[str, dict[str, Any]]:
    """``{"storage.s3": {"bucket": "", ...}, ...}``: every section's keys with their defaults as written in TOML."""
    return {path: {s.name: s.default for _, s in settings_of(child)} for path, child, _ in sections(cls)}


def env_name(section: str, key: str) -> str:
    """``storage.s3`` + ``bucket`` → ``MIRROR_STORAGE_S3_BUCKET``."""
    return "MIRROR_" + "_".join(section.split(".") + [key]).upper()


def build(cls: type, raw: Mapping[str, Mapping[str, Any]], where: str = "") -> Any:
    """Parse the section at `where` (and the sections nested in it) from `raw` (``{"storage.s3": {...}}``, or
    ``{"upstream[0]": {...}}`` for one ``[[table]]``) into a `cls`. Every key is parsed, given or not: a required
    key that is missing fails on its default, naming the key."""
    given = raw.get(where, {})
    values: dict[str, Any] = {}
    for item, setting in settings_of(cls):
        dotted = f"{where}.{setting.name}" if where else setting.name
        values[item.name] = setting.parse(dotted, given.get(setting.name, setting.default))
    for item in fields(cls):
        if _SECTION in item.metadata:
            values[item.name] = build(item.metadata[_SECTION][0], raw, f"{where}.{item.name}" if where else item.name)
    return cls(**values)
