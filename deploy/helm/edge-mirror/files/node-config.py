#!/usr/bin/env python3
"""Point a node's containerd at its local edge: write ``certs.d/<registry>/hosts.toml`` for each registry.

Runs as the chart's init container (``write``) and as its post-delete hook (``restore``); the e2e tests run this
very file to make the ``hosts.toml`` files the real containerd pulls with.

``write``: for each ``--registry HOST[=SERVER]`` the file sends pull and resolve to ``--edge`` first (short
``dial_timeout``, so a node whose edge is down falls through quickly), then, with ``--prepend-existing``, to the
hosts the node already had, and finally to ``SERVER`` (``https://HOST``; Docker Hub's is
``https://registry-1.docker.io``). An Authorization header for the edge can be read from a file (a mounted Secret);
such a file is written 0600. An existing ``hosts.toml`` is kept once as ``hosts.toml.edge-mirror-orig`` before it
is replaced. A file written earlier for a registry no longer listed (an upgrade dropped it) is restored first.

``restore``: puts the kept original back, or removes the file (and its directory if left empty) where there was
none; ``--all``: also every other file this script wrote (``nodeConfig.enabled=false``, uninstall).

``done`` and ``wait`` let ``helm uninstall`` wait for every node's restore: the post-delete DaemonSet runs
``restore`` as its init container and ``done`` (answer 200 on ``--port``, its readiness) after it, so a pod is
ready only once its node is restored; the hook's wait pod runs ``wait``, which asks the API server for the
DaemonSet's status until every node it should run on has a ready pod (or fails after ``--timeout`` seconds).

The certs.d directory is ``--certs-dir``; else the path in the node's ``--override-file`` (a per-node override);
else the first entry of the CRI registry ``config_path`` in containerd's ``--containerd-config`` and its
``imports`` drop-ins (version 1: ``plugins.cri``; 2: ``io.containerd.grpc.v1.cri``; 3, containerd 2.x:
``io.containerd.cri.v1.images``); else, with no config file or a version 3 one, containerd 2.x's default
``/etc/containerd/certs.d``. All looked up under ``--host-root`` where the node's filesystem is mounted.
Standard library only: it runs in the edge image, or any Python 3.11.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its two modules sit beside it (ConfigMap, image)

from containerd_config import NodeConfigError, detect_certs_dir  # noqa: E402
from restore_wait import SERVICE_ACCOUNT, daemonset_fetcher, in_cluster_api, serve_done, wait_restored  # noqa: E402

MARKER = "# Written by edge-mirror's node-config; `node-config.py restore` puts back what was here.\n"
BACKUP_SUFFIX = ".edge-mirror-orig"
DOCKER_HUB_SERVER = "https://registry-1.docker.io"


def default_server(host: str) -> str:
    return DOCKER_HUB_SERVER if host == "docker.io" else f"https://{host}"


def edge_url(text: str) -> str:
    """``--edge`` as containerd needs it: an IPv6 node address in brackets (the kubelet's ``$(NODE_IP)`` has none,
    and ``http://fd00::7:5000`` would be split at the wrong colon)."""
    scheme, separator, rest = text.partition("://")
    authority, slash, path = rest.partition("/")
    if separator and authority.count(":") > 1 and not authority.startswith("["):
        host, _, port = authority.rpartition(":")
        authority = f"[{host}]:{port}"
    return f"{scheme}{separator}{authority}{slash}{path}"


def parse_registry(text: str) -> tuple[str, str]:
    """``HOST`` or ``HOST=SERVER`` → (host, server)."""
    host, _, server = text.partition("=")
    host = host.strip()
    if not host or "/" in host or host in (".", ".."):
        raise NodeConfigError(f"--registry {text!r}: expected HOST or HOST=SERVER, e.g. docker.io")
    return host, server.strip() or default_server(host)


def _toml_key(key: str) -> str:
    return key if key and all(char.isascii() and (char.isalnum() or char in "_-") for char in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(key)} = {_toml_value(item)}" for key, item in value.items()) + "}"
    raise NodeConfigError(f"cannot write {value!r} into hosts.toml")


def _toml_table(name: str, table: dict[str, Any], indent: str = "") -> list[str]:
    """``[name]`` with its keys, then its sub-tables (TOML wants a table's keys before its sub-tables)."""
    lines = [f"{indent}[{name}]"] if name else []
    inner = indent + "  " if name else ""
    subtables = {key: value for key, value in table.items() if isinstance(value, dict)}
    lines += [f"{inner}{_toml_key(key)} = {_toml_value(value)}" for key, value in table.items() if key not in subtables]
    for key, value in subtables.items():
        lines += _toml_table(f"{name}.{_toml_key(key)}" if name else _toml_key(key), value, inner)
    return lines


def hosts_toml(server: str, edge: str, dial_timeout: str, authorization: str | None,
               original: dict[str, Any]) -> str:
    """The file: the edge first, then the node's own earlier hosts, then `server` as the fallback. `original`'s
    other top-level settings (``ca``, ``client``, ``skip_verify``, ``[header]``...: they belong to the server) and
    its hosts are kept as they were (``prependExisting``)."""
    edge_settings: dict[str, Any] = {"capabilities": ["pull", "resolve"]}
    if dial_timeout:
        edge_settings["dial_timeout"] = dial_timeout
    if authorization:
        edge_settings["header"] = {"Authorization": [authorization]}
    top = {"server": server, **{key: value for key, value in original.items() if key not in ("server", "host")}}
    hosts = {edge: edge_settings, **{url: settings for url, settings in original.get("host", {}).items() if url != edge}}
    parts = ["\n".join(_toml_table("", top)) + "\n"]
    parts += ["\n".join(_toml_table(f"host.{json.dumps(url)}", settings)) + "\n" for url, settings in hosts.items()]
    return MARKER + "\n".join(parts)


def _has_header(table: dict[str, Any]) -> bool:
    return any(key == "header" or (isinstance(value, dict) and _has_header(value)) for key, value in table.items())


def _existing(path: Path) -> dict[str, Any]:
    """The node's own file for this registry, parsed (from the kept copy when there is one)."""
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    for candidate in (backup, path):
        if candidate.exists() and not (candidate == path and candidate.read_text().startswith(MARKER)):
            try:
                return tomllib.loads(candidate.read_text())
            except tomllib.TOMLDecodeError as error:
                raise NodeConfigError(f"{candidate} is not valid TOML: {error}") from None
    return {}


def _atomic_write(path: Path, text: str, mode: int) -> None:
    """Replace `path` with `text`, created with `mode` (0600 when it holds a credential: no umask, no window)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), mode)
        file.write(text)
    os.replace(temporary, path)


def write(certs_dir: Path, registries: list[tuple[str, str]], edge: str, dial_timeout: str,
          authorization: str | None, prepend_existing: bool) -> list[Path]:
    """Write each registry's file, after restoring those an earlier run wrote for registries no longer listed."""
    listed = {host for host, _ in registries}
    written = restore(certs_dir, [host for host in written_hosts(certs_dir) if host not in listed])
    for host, server in registries:
        path = certs_dir / host / "hosts.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        original = _existing(path)
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if path.exists() and not path.read_text().startswith(MARKER) and not backup.exists():
            os.replace(path, backup)
        kept = original if prepend_existing else {}
        server = kept.get("server") or server
        text = hosts_toml(server, edge, dial_timeout, authorization, kept)
        # containerd (root) reads it; a header in it (an Authorization) is a credential: owner-only then.
        _atomic_write(path, text, 0o600 if authorization or _has_header(kept) else 0o644)
        written.append(path)
    return written


def dry_run(certs_dir: Path, registries: list[tuple[str, str]], edge: str, dial_timeout: str,
            authorization: str | None, prepend_existing: bool) -> list[str]:
    """What ``write`` would do, as unified diffs (the Authorization value redacted); nothing on the node changes."""
    listed = {host for host, _ in registries}
    lines = [f"would restore {certs_dir / host / 'hosts.toml'} (registry no longer listed)"
             for host in written_hosts(certs_dir) if host not in listed]
    for host, server in registries:
        path = certs_dir / host / "hosts.toml"
        kept = _existing(path) if prepend_existing else {}
        text = hosts_toml(kept.get("server") or server, edge, dial_timeout, authorization and "<redacted>", kept)
        current = path.read_text() if path.exists() else ""
        diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), f"{path} (now)",
                                         f"{path} (would be)", lineterm=""))
        lines += diff or [f"{path} unchanged"]
    return lines


def written_hosts(certs_dir: Path) -> list[str]:
    """Every registry whose ``hosts.toml`` this script wrote (its first line is the marker)."""
    if not certs_dir.is_dir():
        return []
    return sorted(path.parent.name for path in certs_dir.glob("*/hosts.toml") if _is_ours(path))


def _is_ours(path: Path) -> bool:
    try:
        with path.open() as file:
            return file.readline() == MARKER
    except OSError:
        return False


def restore(certs_dir: Path, hosts: list[str]) -> list[Path]:
    restored = []
    for host in hosts:
        path = certs_dir / host / "hosts.toml"
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if backup.exists():
            os.replace(backup, path)
        elif path.exists() and path.read_text().startswith(MARKER):
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        else:
            continue
        restored.append(path)
    return restored


def _wait(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> int:
    if not arguments.daemonset:
        parser.error("wait needs --daemonset")
    fetch = daemonset_fetcher(arguments.api_server or in_cluster_api(), arguments.namespace, arguments.daemonset,
                              arguments.token_file, arguments.ca_file)
    done, progress = wait_restored(fetch, arguments.timeout)
    if done:
        print(f"node-config: {progress}")
        return 0
    print(f"node-config: restore not confirmed in {arguments.timeout:g}s ({progress}). On a large cluster set "
          "nodeConfig.restoreTimeout higher and run `helm uninstall --timeout` above it (README, Deploy).",
          file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="node-config.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["write", "restore", "done", "wait"])
    parser.add_argument("--registry", action="append", default=[], help="HOST or HOST=SERVER; repeat per registry")
    parser.add_argument("--edge", help="the node's edge, e.g. http://10.0.0.7:5000 (write)")
    parser.add_argument("--dial-timeout", default="200ms", help="how long containerd tries the edge before falling back")
    parser.add_argument("--authorization-file", type=Path, help="file holding the Authorization header value")
    parser.add_argument("--prepend-existing", action="store_true", help="keep the node's earlier hosts after the edge")
    parser.add_argument("--dry-run", action="store_true", help="write: print the diffs, change nothing")
    parser.add_argument("--skip-undetected", action="store_true",
                        help="exit 0, changing nothing, when the certs.d directory cannot be found")
    parser.add_argument("--certs-dir", type=Path, help="containerd's certs.d (default: detected from its config)")
    parser.add_argument("--containerd-config", type=Path, default=Path("/etc/containerd/config.toml"))
    parser.add_argument("--override-file", type=Path, default=Path("/etc/containerd/edge-mirror-certs-dir"),
                        help="a node file holding this node's certs.d path, read before containerd's config")
    parser.add_argument("--host-root", type=Path, default=Path("/"), help="where the node's / is mounted")
    parser.add_argument("--all", action="store_true", help="restore: also every other file this script wrote")
    parser.add_argument("--port", type=int, default=8080, help="done: the port the restore pod answers on")
    parser.add_argument("--daemonset", help="wait: the restore DaemonSet, in --namespace")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--api-server", default="", help="wait: default: the in-cluster API server")
    parser.add_argument("--token-file", type=Path, default=SERVICE_ACCOUNT / "token")
    parser.add_argument("--ca-file", type=Path, default=SERVICE_ACCOUNT / "ca.crt")
    parser.add_argument("--timeout", type=float, default=240, help="wait: give up after this many seconds")
    arguments = parser.parse_args(argv)
    if arguments.action == "done":
        serve_done(arguments.port)
        return 0
    if arguments.action == "wait":
        return _wait(parser, arguments)
    if not arguments.registry and not (arguments.action == "restore" and arguments.all):
        parser.error(f"{arguments.action} needs at least one --registry")
    try:
        lines = _node_action(arguments)
    except (NodeConfigError, OSError) as error:
        print(f"node-config: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _node_action(arguments: argparse.Namespace) -> list[str]:
    """``write`` or ``restore`` on this node; the lines to print."""
    registries = [parse_registry(text) for text in arguments.registry]
    try:
        certs_dir = arguments.certs_dir or detect_certs_dir(arguments.containerd_config, arguments.host_root,
                                                             arguments.override_file)
    except NodeConfigError as error:
        if not arguments.skip_undetected:
            raise
        # One odd node must not stall a fleet's rollout: it keeps pulling straight from the registries.
        return [f"node-config: {error}", "node-config: this node's containerd is left as it was (--skip-undetected)"]
    if arguments.action == "restore":
        hosts = [host for host, _ in registries]
        if arguments.all:
            hosts += [host for host in written_hosts(certs_dir) if host not in hosts]
        return [f"node-config: restore {path}" for path in restore(certs_dir, hosts)]
    if not arguments.edge:
        raise NodeConfigError("--edge is required to write")
    authorization = None
    if arguments.authorization_file:
        authorization = arguments.authorization_file.read_text().strip() or None
    options = (certs_dir, registries, edge_url(arguments.edge), arguments.dial_timeout, authorization,
               arguments.prepend_existing)
    if arguments.dry_run:
        return dry_run(*options)
    return [f"node-config: write {path}" for path in write(*options)]


if __name__ == "__main__":
    sys.exit(main())
