"""``edge-mirror serve [--config FILE]``: load and check the settings, then serve until SIGTERM/SIGINT."""

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-mirror", description="Edge registry mirror")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the registry API")
    serve.add_argument("--config", type=Path, help="TOML settings file (MIRROR_* variables override it)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    arguments = parser.parse_args(argv)

    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = config_module.load(arguments.config)
    except config_module.ConfigError as error:
        print(f"edge-mirror: config error: {error}", file=sys.stderr)
        return 2
    return _serve(settings)
