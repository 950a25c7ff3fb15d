"""The ASGI application: routes, OCI error mapping (lower layers' `mirror.domain` errors: `failures.py`),
per-request metrics, and the edge's lifetime (its parts are built in `mirror.compose`)."""

from __future__ import annotations

import contextlib
import logging
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from mirror import errors, metrics
from mirror.api import admin, base, blobs, events, listings, manifests, peer, referrers, uploads
from mirror.api.accesslog import AccessLog
from mirror.api.connection import BodyReadTimeout, CloseWhenBodyUnread, ConnectionLimits, RefuseAmbiguousLength
from mirror.api.failures import problem_error
from mirror.api.guard import guarded
from mirror.api.observed import ObservedResponses, Observer, Outcome
from mirror.api.responses import API_VERSION_HEADER, CLIENT_CLOSED_REQUEST, error_response
from mirror.auth import Authorizer
from mirror.compose import open_node
from mirror.config import Config
from mirror.domain import Problem

log = logging.getLogger(__name__)

READ = ["GET", "HEAD"]
# Metric label values come from closed sets: a method or route a client invents is counted as "other".
KNOWN_METHODS = frozenset(metrics.HTTP_METHODS)


# Every registry route is `guarded`: the access decision comes before the handler acts. Health, readiness and
# metrics stay open (metrics can move to its own address with http.metrics_addr).
ROUTES = [
    Route("/v2/", guarded(base.version_check, "base"), methods=READ),
    Route("/v2/_catalog", guarded(listings.catalog, "catalog"), methods=READ),
    Route("/v2/{name:path}/tags/list", guarded(listings.list_tags), methods=READ),
    Route("/v2/{name:path}/referrers/{digest}", guarded(referrers.list_referrers), methods=READ),
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
# Not a registry route: signed with the region's peers.secret instead of client credentials (mirror/api/peer.py).
PEER_ROUTE = Route("/_peer/blobs/{digest}", peer.peer_blob, methods=["GET"])


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
        code = errors.UNSUPPORTED if exc.status_code < 500 else errors.UNKNOWN
        error = errors.RegistryError(code, str(exc.detail), status=exc.status_code)
    return error_response(error)


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """The client hung up before its request body was complete (a pod deleted mid-push, a cancelled job): its
    event, not the edge's failure. Nothing reaches the client; the status only names the event in the access
    log and in ``mirror_http_requests_total`` (nginx's 499). Whatever the request had started (an upload
    session) stays as it was before this request, so the client can resume."""
    log.debug("client closed %s %s before its body was complete", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(errors.RegistryError(errors.UNKNOWN, "internal error; see the mirror's log"))


def count_request(scope: Scope, outcome: Outcome) -> None:
    """Count every response by method, route and status, and time it by route (an observer of responses)."""
    route = getattr(scope.get("endpoint"), "__name__", metrics.UNMATCHED_ROUTE)
    method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
    metrics.http_requests.labels(method, route, str(outcome.status)).inc()
    metrics.http_request_duration.labels(route).observe(outcome.seconds)


def served_routes(config: Config) -> list[Route]:
    """The routes an edge with `config` serves on its main address."""
    return [
        *(ROUTES if config.http.metrics_addr else [*ROUTES, METRICS_ROUTE]),
        *([*admin.ROUTES, *events.ADMIN_ROUTES] if config.admin.enabled else []),
        *([PEER_ROUTE, *events.PEER_ROUTES] if config.peers.enabled else []),
    ]


def known_labels(config: Config) -> metrics.Known:
    """The label values this edge's configuration gives its metrics: the routes it serves, its remote routes."""
    http = tuple((route.endpoint.__name__, tuple(sorted(route.methods or ()))) for route in served_routes(config))
    return metrics.Known(http_routes=http, remote_routes=tuple(remote.ns for remote in config.upstreams))


def create_metrics_app() -> ASGIApp:
    """Only ``/metrics``, for http.metrics_addr (its connections count against the same limits)."""
    return ConnectionLimits(Starlette(routes=[METRICS_ROUTE]))


def create_app(config: Config) -> ASGIApp:
    """The mirror as an ASGI app; backend clients and caches open and close with the app's lifespan.

    The authorizer is built here, before serving, so a bad ``[auth]`` file fails start-up with a ConfigError.
    """
    authorizer = Authorizer(config.auth)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        node = await open_node(config)
        app.state.edge = node.edge
        app.state.peer_reader = node.reader
        app.state.tiers = node.tiers
        app.state.activity = admin.Activity()
        app.state.admin_token = config.admin.token
        app.state.catalog = node.catalog
        app.state.uploads = node.uploads
        app.state.publisher = node.publisher
        app.state.region_events = node.region_events
        try:
            yield
        finally:
            await node.close()

    app = Starlette(
        routes=served_routes(config),
        lifespan=lifespan,
        exception_handlers={
            errors.RegistryError: registry_error,
            Problem: problem_error,
            HTTPException: http_error,
            ClientDisconnect: client_disconnected,
            Exception: unexpected_error,
        },
    )
    app.state.authorizer = authorizer
    metrics.start(known_labels(config))
    observers: list[Observer] = [count_request, *([AccessLog(config.log)] if config.log.access else [])]
    return ObservedResponses(
        ConnectionLimits(RefuseAmbiguousLength(CloseWhenBodyUnread(BodyReadTimeout(app, config.http.read_timeout)))),
        observers,
        headers=[API_VERSION_HEADER],
    )
