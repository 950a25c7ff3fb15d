"""The ASGI application: routes, OCI error mapping, per-request metrics, and the edge's lifetime."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirror import errors, metrics
from mirror.api import base, blobs, listings, manifests, uploads
from mirror.api.connection import CloseWhenBodyUnread
from mirror.api.guard import guarded
from mirror.api.responses import API_VERSION_HEADER, error_response
from mirror.auth import Authorizer
from mirror.cache import EdgeCache
from mirror.cache.publish import Publisher
from mirror.cache.uploads import Uploads
from mirror.config import Config
from mirror.upstream import open_upstream

log = logging.getLogger(__name__)

READ = ["GET", "HEAD"]


# Every registry route is `guarded`: the access decision comes before the handler acts. Health, readiness and
# metrics stay open (metrics can move to its own address with http.metrics_addr).
ROUTES = [
    Route("/v2/", guarded(base.version_check, "base"), methods=READ),
    Route("/v2/_catalog", guarded(listings.catalog, "catalog"), methods=READ),
    Route("/v2/{name:path}/tags/list", guarded(listings.list_tags), methods=READ),
    Route("/v2/{name:path}/manifests/{reference}", guarded(manifests.manifest), methods=READ + ["PUT", "DELETE"]),
    Route("/v2/{name:path}/blobs/uploads/", guarded(uploads.start_upload), methods=["POST"]),
    Route(
        "/v2/{name:path}/blobs/uploads/{upload}", guarded(uploads.upload_session), methods=READ + ["PATCH", "PUT", "DELETE"]
    ),
    Route("/v2/{name:path}/blobs/{digest}", guarded(blobs.blob), methods=READ + ["DELETE"]),
    Route("/healthz", base.healthz, methods=READ),
    Route("/readyz", base.readyz, methods=READ),
]
METRICS_ROUTE = Route("/metrics", base.prometheus, methods=READ)


async def registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.RegistryError)
    return error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = errors.RegistryError(errors.UNSUPPORTED, f"{request.method} is not supported on {request.url.path}")
    elif exc.status_code == 404:
        error = errors.RegistryError(errors.NOT_FOUND, f"no endpoint at {request.url.path}")
    else:
        error = errors.RegistryError(errors.UNKNOWN, str(exc.detail), status=exc.status_code)
    return error_response(error)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(errors.RegistryError(errors.UNKNOWN, "internal error; see the mirror's log"))


class RequestMetrics:
    """Counts every response by method, route and status, and adds the registry API version header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_version(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), API_VERSION_HEADER]
            await send(message)

        try:
            await self.app(scope, receive, send_with_version)
        finally:
            endpoint = scope.get("endpoint")
            route = getattr(endpoint, "__name__", "unmatched")
            metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            metrics.http_request_duration.labels(route).observe(time.perf_counter() - started)


def create_metrics_app() -> ASGIApp:
    """Only ``/metrics``, for http.metrics_addr."""
    return Starlette(routes=[METRICS_ROUTE])


def create_app(config: Config) -> ASGIApp:
    """The mirror as an ASGI app; backend clients and caches open and close with the app's lifespan.

    The authorizer is built here, before serving, so a bad ``[auth]`` file fails start-up with a ConfigError.
    """
    authorizer = Authorizer(config.auth)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstream = open_upstream(config.storage, pool_size=config.fill.max_connections + 16)
        await upstream.start()
        edge = EdgeCache(config, upstream)
        app.state.edge = edge
        app.state.uploads = Uploads(upstream, edge.links, config.upload, config.cache.dir / "uploads")
        app.state.publisher = Publisher(upstream, edge, delete_enabled=config.storage.delete)
        if await edge.probe():
            log.info("backend %s is reachable", upstream.name)
        else:
            log.warning("backend %s is not reachable; serving from cache until it is", upstream.name)
        try:
            yield
        finally:
            await edge.close()
            await upstream.close()

    app = Starlette(
        routes=ROUTES if config.http.metrics_addr else [*ROUTES, METRICS_ROUTE],
        lifespan=lifespan,
        exception_handlers={
            errors.RegistryError: registry_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
    )
    app.state.authorizer = authorizer
    return RequestMetrics(CloseWhenBodyUnread(app))
