"""Where containerd reads ``certs.d`` on a node (node-config.py's discovery): a per-node override file, the CRI
registry ``config_path`` in containerd's config and its ``imports`` drop-ins (config versions 1, 2 and 3), or
containerd 2.x's built-in default. Standard library only, beside node-config.py wherever it runs."""

from __future__ import annotations

import glob
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_CERTS_DIR = "/etc/containerd/certs.d"  # containerd 2.x: config_path defaults to it (then /etc/docker/certs.d)
CRI_PLUGINS = ("io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images")


class NodeConfigError(Exception):
    """Something the operator must fix; printed as one line, exit status 2."""


def _on_host(host_root: Path, path: str | Path) -> Path:
    return host_root / Path(path).relative_to("/")


def _containerd_documents(config_file: str, host_root: Path) -> list[dict[str, Any]]:
    """containerd's config file, then its ``imports`` (recursively), in the order containerd merges them: a path
    relative to the file that imports it, a ``*`` pattern expanded in sorted order, a missing file skipped."""
    documents, pending, loaded = [], [config_file], set()
    while pending:
        path = os.path.normpath(pending.pop(0))
        if path in loaded:
            continue
        loaded.add(path)
        try:
            document = tomllib.loads(_on_host(host_root, path).read_text())
        except FileNotFoundError:
            continue
        except tomllib.TOMLDecodeError as error:
            raise NodeConfigError(f"{path} is not valid TOML: {error}") from None
        documents.append(document)
        for entry in document.get("imports", []):
            entry = entry if entry.startswith("/") else os.path.join(os.path.dirname(path), entry)
            if "*" in entry:
                matches = glob.glob(str(_on_host(host_root, os.path.normpath(entry))))
                pending += ["/" + str(Path(match).relative_to(host_root)) for match in sorted(matches)]
            else:
                pending.append(entry)
    return documents


def _cri_config_path(documents: list[dict[str, Any]]) -> str | None:
    """The registry ``config_path`` containerd ends up with after merging `documents` in order. containerd 1.x
    (config version 1 or 2) replaces a plugin's whole table with a later file's; 2.x (version 3) merges keys."""
    version = documents[0].get("version", 1)  # a config without `version` is version 1 (containerd 1.x)
    names = {1: ("cri", "io.containerd.grpc.v1.cri"), 2: ("io.containerd.grpc.v1.cri",)}.get(version, CRI_PLUGINS)
    config_path = None
    for document in documents:
        for name in names:
            plugin = document.get("plugins", {}).get(name)
            if plugin is None:
                continue
            found = plugin.get("registry", {}).get("config_path")
            config_path = found if version < 3 else (found or config_path)
    return config_path


def detect_certs_dir(containerd_config: Path, host_root: Path, override_file: Path | None = None) -> Path:
    """The certs.d directory containerd reads on this node, under `host_root`: the per-node override file's path
    if there is one, else the first directory of the CRI registry ``config_path`` in containerd's config and its
    imports, else containerd 2.x's built-in default where no config file (or a version 3 one) leaves it unset."""
    if override_file and _on_host(host_root, override_file).is_file():
        override = _on_host(host_root, override_file).read_text().strip()
        if override.startswith("/"):
            return _on_host(host_root, override)
        raise NodeConfigError(f"{override_file} must hold an absolute certs.d path, not {override!r}")
    documents = _containerd_documents(str(containerd_config), host_root)
    config_path = _cri_config_path(documents) if documents else None
    if config_path:
        return _on_host(host_root, config_path.split(":")[0])
    if not documents or documents[0].get("version", 1) >= 3:
        if not documents:
            print(f"node-config: no {containerd_config}: using containerd 2.x's default {DEFAULT_CERTS_DIR} "
                  "(containerd 1.x reads it only with config_path set)", file=sys.stderr)
        return _on_host(host_root, DEFAULT_CERTS_DIR)
    raise NodeConfigError(
        f"{containerd_config} (and its imports) set no registry config_path: containerd 1.x reads no certs.d then. "
        f"Set plugins.\"{CRI_PLUGINS[0]}\".registry.config_path = \"{DEFAULT_CERTS_DIR}\" and restart containerd, "
        f"or write this node's certs.d path into {override_file or '--override-file'} (or pass --certs-dir)"
    )
