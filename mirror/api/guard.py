"""The auth check every registry route passes before it acts: build the request's access items, ask `auth`.

Wrapping each route's endpoint (rather than a middleware in front of routing) means the repository name is the
one the router matched, exactly what the handler will act on.
"""

from __future__ import annotations

import functools
from typing import Awaitable, Callable, TypeVar

from starlette.requests import Request

from mirror.auth import CATALOG, Access, Authorizer, for_repository
from mirror.reference import parse_name

_Reply = TypeVar("_Reply")  # a starlette Response, or an ASGI app such as BlobResponse


def _repository_access(request: Request) -> tuple[Access, ...]:
    name = str(parse_name(request.path_params["name"]))
    source = request.query_params.get("from")  # registry:2 checks `from` on any method, not only mounts
    return for_repository(request.method, name, str(parse_name(source)) if source else None)


def guarded(
    endpoint: Callable[[Request], Awaitable[_Reply]], scope: str = "repository"
) -> Callable[[Request], Awaitable[_Reply]]:
    """`endpoint` behind the access decision; `scope` is ``repository``, ``catalog`` or ``base`` (``/v2/``)."""

    @functools.wraps(endpoint)
    async def check_then_serve(request: Request) -> _Reply:
        if scope == "repository":
            items = _repository_access(request)
        elif scope == "catalog":
            items = CATALOG
        else:
            items = ()
        authorizer: Authorizer = request.app.state.authorizer
        subject = await authorizer.authorize(request.headers.get("authorization"), items)
        if subject:
            request.state.auth_subject = subject  # for the access log (mirror/api/accesslog.py)
        return await endpoint(request)

    return check_then_serve
