"""``edge-mirror serve [--config FILE]``: load and check the settings, then serve until SIGTERM/SIGINT."""

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-mirror", description="Edge registry mirror")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the registry API")
    serve.add_argument("--config", type=Path, help="TOML settings file (MIRROR_* variables override it)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    reindex = commands.add_parser("reindex", help="rebuild the referrers index from the manifest revisions")
    reindex.add_argument("--config", type=Path, help="TOML settings file (MIRROR_* variables override it)")
    reindex.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    reindex.add_argument("name", nargs="?", help="one repository (default: every repository in storage)")
    arguments = parser.parse_args(argv)

    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = config_module.load(arguments.config)
    except config_module.ConfigError as error:
        print(f"edge-mirror: config error: {error}", file=sys.stderr)
        return 2
    if arguments.command == "reindex":
        from mirror.referrers.reindex import run

        return asyncio.run(run(settings.storage, arguments.name))
    return _serve(settings)
