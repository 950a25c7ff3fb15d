"""``/v2/`` version check, health, readiness and Prometheus metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mirror import metrics
from mirror.cache import EdgeCache

JSON = "application/json"


async def version_check(request: Request) -> Response:
    return Response(b"{}", media_type=JSON)


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


async def readyz(request: Request) -> Response:
    """Ready when the backend answers; the mirror keeps serving its cache either way."""
    edge: EdgeCache = request.app.state.edge
    if await edge.probe():
        return Response(b'{"backend":"up"}', media_type=JSON)
    return Response(b'{"backend":"down"}', status_code=503, media_type=JSON)


async def prometheus(request: Request) -> Response:
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
