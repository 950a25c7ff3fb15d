"""Where settings come from: defaults, then the TOML file, then ``MIRROR_*`` environment overrides.

Which keys exist, their defaults and how each is checked is declared once, in `settings.py`."""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from mirror.config import schema
from mirror.config.notifications import endpoint_tables
from mirror.config.remote import check_remotes
from mirror.config.schema import env_name
from mirror.config.settings import Config
from mirror.config.validate import check
from mirror.config.values import ConfigError

DEFAULTS: dict[str, dict[str, Any]] = schema.defaults(Config)
_TABLES = {name: (attribute, cls) for attribute, name, cls, *_ in schema.array_tables(Config)}

# The package's name, not this module's: operators (and tests) filter on "mirror.config".
log = logging.getLogger("mirror.config")


def _flatten_toml(document: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Turn nested TOML tables into ``{"storage.s3": {"bucket": ...}}``; unknown keys raise ConfigError."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in document.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            if dotted not in DEFAULTS:
                raise ConfigError(dotted, f"unknown section (known: {', '.join(sorted(DEFAULTS))})")
            sections.update(_flatten_toml(value, dotted))
        else:
            if prefix not in DEFAULTS or key not in DEFAULTS[prefix]:
                raise ConfigError(dotted, "unknown setting")
            sections.setdefault(prefix, {})[key] = value
    return sections


def _array_table(name: str, value: Any, cls: type) -> list[dict[str, Any]]:
    """The ``[[name]]`` tables as written, sub-tables flattened (``ignore.actions``); unknown keys raise ConfigError."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(name, f"must be an array of tables: [[{name}]]")
    known = [setting.name for _, setting in schema.settings_of(cls)]
    tables = []
    for index, table in enumerate(value):
        flat: dict[str, Any] = {}
        for key, item in table.items():
            inner = [name.split(".", 1)[1] for name in known if name.startswith(key + ".")]
            if inner and not (isinstance(item, dict) and set(item) <= set(inner)):
                raise ConfigError(f"{name}[{index}].{key}", f"expected a table with {' and/or '.join(inner)}")
            if inner:
                flat.update({f"{key}.{sub}": subvalue for sub, subvalue in item.items()})
            elif key not in known:
                raise ConfigError(f"{name}[{index}].{key}", f"unknown setting (known: {', '.join(known)})")
            else:
                flat[key] = item
        tables.append(flat)
    return tables


def _read(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The file's ``[sections]`` (flattened) and its arrays of tables by name."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError("--config", f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("--config", f"{path} is not valid TOML: {error}") from None
    arrays = {"upstream": _array_table("upstream", document.pop("upstream", []), _TABLES["upstream"][1])}
    endpoints = endpoint_tables(document.pop("notifications", {}))
    arrays["notifications.endpoints"] = _array_table("notifications.endpoints", endpoints, _TABLES["notifications.endpoints"][1])
    return _flatten_toml(document), arrays


def _override(raw: dict[str, dict[str, Any]], upstreams: list[dict[str, Any]], environ: Mapping[str, str]) -> None:
    """Apply ``MIRROR_*`` variables; warn about those that name no setting."""
    known = set()
    for section, values in raw.items():
        for key in values:
            known.add(env_name(section, key))
            override = environ.get(env_name(section, key))
            if override is not None:
                values[key] = override
    upstream_keys = [setting.name for _, setting in schema.settings_of(_TABLES["upstream"][1])]
    for index, values in enumerate(upstreams):
        for key in upstream_keys:
            known.add(env_name(f"upstream.{index}", key))
            override = environ.get(env_name(f"upstream.{index}", key))
            if override is not None:
                values[key] = override
    for variable in sorted(name for name in environ if name.startswith("MIRROR_") and name not in known):
        # A warning, not a refusal: Kubernetes injects MIRROR_PORT-style variables for a Service named "mirror".
        log.warning("%s is not a setting of this mirror and is ignored (misspelt? see the README's keys)", variable)


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read defaults, then the TOML file at `path` (if any), then ``MIRROR_*`` overrides, and validate."""
    environ = os.environ if environ is None else environ
    raw = {section: dict(values) for section, values in DEFAULTS.items()}
    arrays: dict[str, list[dict[str, Any]]] = {name: [] for name in _TABLES}
    if path is not None:
        sections, arrays = _read(path)
        for section, values in sections.items():
            raw[section].update(values)
    _override(raw, arrays["upstream"], environ)
    config = check(schema.build(Config, raw), raw)
    tables = {
        attribute: tuple(schema.build(cls, {f"{name}[{i}]": t}, f"{name}[{i}]") for i, t in enumerate(arrays[name]))
        for name, (attribute, cls) in _TABLES.items()
    }
    return replace(config, upstreams=check_remotes(tables["upstreams"]), notifications=tables["notifications"])
