"""Connection safety: keep-alive after requests answered before their body was read (a push refused early:
413, 416, 404...), and a bound on how long a client may stall while sending a body."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirror import errors


class CloseWhenBodyUnread:
    """Adds ``Connection: close`` to a response that starts before its request body was read to the end.

    The rest of that body is still on the wire, so the connection cannot carry another request; without the
    header a keep-alive client sends its next request into it and waits for an answer that never comes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        body_done = False

        async def tracking_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_done = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_done:
                message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        await self.app(scope, tracking_receive, closing_send)


class BodyReadTimeout:
    """Fails a request whose body stops arriving for `seconds`: 408, and the connection is closed.

    Without it a client that stalls mid-push holds its connection, its spool file and its upload session
    forever. The timeout is per read (as nginx's ``client_body_timeout``), so a large push on a slow link is
    fine as long as bytes keep coming.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise errors.RegistryError(
                    errors.UNKNOWN, f"no request body bytes for {self.seconds:g}s; giving up", status=408
                ) from None
            body_done = message["type"] == "http.disconnect" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
    return False
