"""``edge-mirror serve [--config FILE]``: load and check the settings, then serve until SIGTERM/SIGINT.

``edge-mirror purge-uploads --older-than DURATION [--dry-run]``: remove abandoned push sessions and multipart
uploads from the backend (`mirror.push.purge`).

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


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _serve(settings: config_module.Config) -> int:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HypercornConfig

    from mirror.api import create_app
    from mirror.api.app import create_metrics_app

    try:
        app = create_app(settings)
    except config_module.ConfigError as error:
        print(f"edge-mirror: config error: {error}", file=sys.stderr)
        return 2
    server = HypercornConfig()
    server.bind = [_bind(settings.http.host, settings.http.port)]
    if settings.http.certfile:
        server.certfile, server.keyfile = settings.http.certfile, settings.http.keyfile
    server.keep_alive_timeout = 75
    server.graceful_timeout = 5
    server.accesslog = None
    server.errorlog = logging.getLogger("hypercorn.error")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        servers = [serve(app, server, shutdown_trigger=stop.wait)]  # type: ignore[arg-type]
        if settings.http.metrics_addr:
            metrics_server = HypercornConfig()
            metrics_server.bind = [_bind(*settings.http.metrics_addr)]
            metrics_server.accesslog = None
            servers.append(serve(create_metrics_app(), metrics_server, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        await asyncio.gather(*servers)

    asyncio.run(main())
    return 0


def _purge_uploads(settings: config_module.Config, older_than: float, dry_run: bool) -> int:
    from mirror.push.purge import purge_uploads
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-mirror", description="Edge registry mirror")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the registry API")
    serve.add_argument("--config", type=Path, help="TOML settings file (MIRROR_* variables override it)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    purge = commands.add_parser("purge-uploads", help="abort push sessions and multipart uploads older than a duration")
    purge.add_argument("--config", type=Path, help="TOML settings file (MIRROR_* variables override it)")
    purge.add_argument("--older-than", required=True, help="e.g. 24h, 7d is 168h (sessions started before are removed)")
    purge.add_argument("--dry-run", action="store_true", help="only name what would be removed")
    purge.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    reindex = commands.add_parser("reindex", help="rebuild the referrers index from the manifest revisions")
    reindex.add_argument("--config", type=Path, help="TOML settings file (MIRROR_* variables override it)")
    reindex.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    reindex.add_argument("name", nargs="?", help="one repository (default: every repository in storage)")
    for name, help_text in (
        ("warm", "pull images through the running edge so its cache (and the bucket, for remote images) holds them"),
        ("purge", "drop NAME:TAG or NAME@DIGEST from the running edge's cache; its next tag lookup asks the source"),
        ("stats", "cache size, hit ratios by requests and bytes, top repositories of the running edge"),
    ):
        command = commands.add_parser(name, help=help_text)
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
    arguments = parser.parse_args(argv)

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
