"""Connection safety: keep-alive after requests answered before their body was read (a push refused early:
413, 416, 404...), requests whose body length is ambiguous, and a bound on how long a client may stall while
sending a body, whatever the protocol (HTTP/1.1 Content-Length or chunked, HTTP/2 DATA frames over TLS); and
what a connection admitted past the connection limits may ask for (`mirror.admission`)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirror import errors, metrics
from mirror.admission import CLIENT_FULL, LIMITED
from mirror.api.responses import error_response

# What a limited connection (admitted into the probe reserve while the edge or its client's address is full)
# may ask for: the kubelet's probes and Prometheus. Keep in step with the chart's probes.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class CloseWhenBodyUnread:
    """Adds ``Connection: close`` to a response that starts before its request body was read to the end.

    The rest of that body is still on the wire, so the connection cannot carry another request; without the
    header a keep-alive client sends its next request into it and waits for an answer that never comes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # HTTP/2 streams end on their own (the server resets the rest of the body); only HTTP/1 shares a wire.
        if scope["type"] != "http" or not scope.get("http_version", "1.1").startswith("1") or not _has_body(scope):
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


class ConnectionLimits:
    """On a limited connection (`mirror.admission`): serves a probe path, refuses anything else with 503
    (the edge is full) or 429 (the client's address holds its share), ``Retry-After: 1``, counted in
    ``mirror_rejected_connections_total``. Either way the connection closes after this one request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limited = scope.get("extensions", {}).get(LIMITED) if scope["type"] == "http" else None
        if limited is None:
            await self.app(scope, receive, send)
            return
        http1 = scope.get("http_version", "1.1").startswith("1")

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and http1:  # HTTP/2 refuses a Connection header
                message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        if scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, closing_send)
            return
        reason = limited["reason"]
        metrics.rejected_connections.labels(reason).inc()
        if reason == CLIENT_FULL:
            error = errors.RegistryError(
                errors.TOO_MANY_REQUESTS, "too many connections from this address", headers={"Retry-After": "1"}
            )
        else:
            error = errors.RegistryError(
                errors.UNAVAILABLE, "the edge has no connection to spare", headers={"Retry-After": "1"}
            )
        await error_response(error)(scope, receive, closing_send)


class RefuseAmbiguousLength:
    """Answers 400 (and closes the connection) to an HTTP/1.1 request with both Content-Length and
    Transfer-Encoding, as RFC 9112 section 6.3 allows: such a request is a smuggling attempt or a broken
    client, and whichever length wins, some proxy on the way may have read the other one. (HTTP/2 forbids
    Transfer-Encoding outright; the h2 library refuses it.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        names = {name for name, _ in scope.get("headers", ())} if scope["type"] == "http" else set()
        if b"content-length" in names and b"transfer-encoding" in names:
            message = "a request may not carry both Content-Length and Transfer-Encoding"
            error = errors.RegistryError(errors.UNSUPPORTED, message, status=400, headers={"Connection": "close"})
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyReadTimeout:
    """Fails a request whose body stops arriving for `seconds`: 408, and the connection is closed.

    Without it a client that stalls mid-push holds its connection, its spool file and its upload session
    forever. The timeout is per read (as nginx's ``client_body_timeout``), so a large push on a slow link is
    fine as long as bytes keep coming. It holds for every request, whatever its headers say: a request
    without a body gets its (empty) end of body at once, and an HTTP/2 request need not announce its length.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        stall = _StallTimer(self.seconds)

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await stall.wait(receive)
            except TimeoutError:
                raise errors.RegistryError(
                    errors.UNKNOWN, f"no request body bytes for {self.seconds:g}s; giving up", status=408
                ) from None
            body_done = message["type"] == "http.disconnect" or not message.get("more_body", False)
            return message

        try:
            await self.app(scope, timed_receive, send)
        finally:
            stall.stop()


class _StallTimer:
    """Raises TimeoutError in `wait` when one receive waits `seconds`, with one timer per request instead of one
    per received piece (a body in 32 KiB chunks is thousands of receives; arming and cancelling a timer for each
    was a tenth of a push's CPU). The timer, when it fires early, is moved to the end of the current wait."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._waiter: asyncio.Task[object] | None = None  # the task in `wait`, None between receives
        self._fired = False

    async def wait(self, receive: Receive) -> Message:
        self._since = self._loop.time()
        self._waiter = asyncio.current_task()
        if self._timer is None:
            self._timer = self._loop.call_at(self._since + self._seconds, self._check)
        try:
            return await receive()
        except asyncio.CancelledError:
            if self._fired and self._waiter is not None and self._waiter.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self._waiter = None

    def _check(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # between receives: the next one arms the timer again
        due = self._since + self._seconds
        if self._loop.time() >= due:
            self._fired = True
            self._waiter.cancel()
        else:
            self._timer = self._loop.call_at(due, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _has_body(scope: Scope) -> bool:
    """Whether an HTTP/1 request has body bytes to come: any Transfer-Encoding, or a Content-Length that is not
    zero (every header is looked at: with both, the transfer coding is what frames the body)."""
    return any(
        name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0"))
        for name, value in scope.get("headers", ())
    )
