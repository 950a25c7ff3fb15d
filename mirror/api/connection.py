"""Keep-alive safety for requests answered before their body was read (a push refused early: 413, 416, 404...)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
    return False
