"""``edge-mirror serve [--config FILE]``: load and check the settings, then serve until SIGTERM/SIGINT.

``edge-mirror purge-uploads --older-than DURATION [--dry-run]``: remove abandoned push sessions and multipart
uploads from the backend (`mirror.push.purge_uploads`).

``warm``, ``purge`` and ``stats`` talk to a running edge (`mirror.ops`); its URL and admin token come from the
same config file unless ``--edge`` / ``--token`` say otherwise."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from mirror import config as config_module


def _serve(settings: config_module.Config) -> int:
    from mirror.api import create_app
    from mirror.api.app import create_metrics_app
    from mirror.server import serve

    try:
        app = create_app(settings)
    except config_module.ConfigError as error:
        print(f"edge-mirror: config error: {error}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(app, create_metrics_app(), settings.http, shutdown_trigger=stop.wait)

    asyncio.run(main())
    return 0


def _purge_uploads(settings: config_module.Config, older_than: float, dry_run: bool) -> int:
    from mirror.push.purge_uploads import purge_uploads
    from mirror.upstream import BackendError, open_upstream

    async def main() -> int:
        upstream = open_upstream(settings.storage, pool_size=4)
        await upstream.start()
        try:
            counts = await purge_uploads(upstream, older_than, dry_run, print)
        except BackendError as error:
            print(f"edge-mirror: backend error: {error}", file=sys.stderr)
            return 1
        finally:
            await upstream.close()
        print(f"{counts.sessions} sessions, {counts.multipart_uploads} multipart uploads, {counts.failures} failures")
        return 1 if counts.failures else 0

    return asyncio.run(main())


CONFIG_HELP = "TOML settings file (MIRROR_* variables override it)"
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
OPERATIONS = (
    ("warm", "pull images through the running edge so its cache (and the bucket, for remote images) holds them"),
    ("purge", "drop NAME:TAG or NAME@DIGEST from the running edge's cache; its next tag lookup asks the source"),
    ("stats", "cache size, hit ratios by requests and bytes, top repositories of the running edge"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-mirror", description="Edge registry mirror")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the registry API")
    serve.add_argument("--config", type=Path, help=CONFIG_HELP)
    serve.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    purge = commands.add_parser("purge-uploads", help="abort push sessions and multipart uploads older than a duration")
    purge.add_argument("--config", type=Path, help=CONFIG_HELP)
    purge.add_argument("--older-than", required=True, help="e.g. 24h, 7d is 168h (sessions started before are removed)")
    purge.add_argument("--dry-run", action="store_true", help="only name what would be removed")
    purge.add_argument("--log-level", default="WARNING", choices=LOG_LEVELS)
    reindex = commands.add_parser("reindex", help="rebuild the referrers index from the manifest revisions")
    reindex.add_argument("--config", type=Path, help=CONFIG_HELP)
    reindex.add_argument("--log-level", default="WARNING", choices=LOG_LEVELS)
    reindex.add_argument("name", nargs="?", help="one repository (default: every repository in storage)")
    for name, help_text in OPERATIONS:
        _add_operation(commands.add_parser(name, help=help_text), name)
    return parser


def _add_operation(command: argparse.ArgumentParser, name: str) -> None:
    """``warm``, ``purge``, ``stats``: commands that talk to a running edge (`mirror.ops`)."""
    command.add_argument("--config", type=Path, help="the edge's TOML settings (for its address and admin token)")
    command.add_argument("--edge", help="the edge's URL (default: from http.addr in the config)")
    if name == "warm":
        command.add_argument("--platform", help="only this platform of a multi-platform image, e.g. linux/amd64")
        command.add_argument("images", nargs="+", metavar="IMAGE")
    else:
        command.add_argument("--token", help="the admin token (default: admin.token from the config)")
    if name == "purge":
        command.add_argument("references", nargs="+", metavar="NAME:TAG|NAME@DIGEST")
    if name == "stats":
        command.add_argument("--json", action="store_true", help="print the raw JSON")


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(level=getattr(arguments, "log_level", "WARNING"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = config_module.load(arguments.config)
    except config_module.ConfigError as error:
        print(f"edge-mirror: config error: {error}", file=sys.stderr)
        return 2
    if arguments.command == "purge-uploads":
        try:
            older_than = config_module.parse_duration("--older-than", arguments.older_than)
        except config_module.ConfigError as error:
            print(f"edge-mirror: {error}", file=sys.stderr)
            return 2
        return _purge_uploads(settings, older_than, arguments.dry_run)
    if arguments.command == "serve":
        from mirror.cache.store import lock_cache_dir

        try:
            lock_cache_dir(settings.cache.dir)  # held for the life of the process; checked before serving
        except config_module.ConfigError as error:
            print(f"edge-mirror: config error: {error}", file=sys.stderr)
            return 2
        return _serve(settings)
    if arguments.command == "reindex":
        from mirror.referrers.reindex import run

        return asyncio.run(run(settings.storage, arguments.name))
    return _operate(arguments, settings)


def _operate(arguments: argparse.Namespace, settings: config_module.Config) -> int:
    from mirror import ops

    host = settings.http.host if settings.http.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    edge = (arguments.edge or f"http://{f'[{host}]' if ':' in host else host}:{settings.http.port}").rstrip("/")
    try:
        if arguments.command == "warm":
            return ops.warm(edge, arguments.images, arguments.platform)
        token = arguments.token or settings.admin.token
        if arguments.command == "purge":
            return ops.purge(edge, token, arguments.references)
        return ops.stats(edge, token, arguments.json)
    except ops.OperationFailed as error:
        print(f"edge-mirror {arguments.command}: {error}", file=sys.stderr)
        return 1
