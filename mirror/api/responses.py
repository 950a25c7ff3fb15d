"""Response helpers: OCI error bodies, and the streaming blob response of the hot path."""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mirror import errors, metrics
from mirror.cache import BlobReader, FillFailed

log = logging.getLogger(__name__)

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")


def error_response(error: errors.RegistryError) -> Response:
    return Response(
        error.body(), status_code=error.status, media_type="application/json", headers=error.headers
    )


class BlobResponse:
    """Streams ``[start, end)`` of a blob with plain ASGI sends of ≥ 1 MiB chunks.

    If the underlying fill fails mid-stream (digest mismatch, backend gone), the response is abandoned
    without its final message, so the server drops the connection and the client sees a failed transfer.
    """

    def __init__(
        self, reader: BlobReader, status: int, headers: dict[str, str], start: int, end: int, send_body: bool
    ) -> None:
        self.reader = reader
        self.status = status
        self.headers = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        self.start = start
        self.end = end
        self.send_body = send_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = metrics.served_bytes.labels(self.reader.source)
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            if self.send_body:
                async for chunk in self.reader.chunks(self.start, self.end):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    served.inc(len(chunk))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except FillFailed as error:
            log.warning("aborting %s %s: %s", scope.get("method"), scope.get("path"), error)
        except OSError as error:
            log.info("client went away during %s: %s", scope.get("path"), error)
        finally:
            self.reader.close()
