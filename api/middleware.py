"""A request-body size limit, enforced before the body is read.

Starlette and FastAPI read any body whole (fastapi #1181), so a client could make the
server buffer gigabytes. `BodySizeLimit` is plain ASGI: it refuses a declared
`Content-Length` above the limit at once, and counts the bytes of a streamed (chunked)
body as they arrive, answering 413 as soon as the count passes the limit.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyTooLarge(Exception):
    """Raised from the wrapped `receive` to abandon the request mid-body."""


class BodySizeLimit:
    """ASGI middleware answering 413 (an `ErrorPublic` body) to bodies over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> JSONResponse:
        message = f"request body is larger than the limit of {self.max_bytes} bytes"
        return JSONResponse(
            {"detail": [{"field": "body", "message": message}]},
            status_code=413,
            headers={"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self._refusal()(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:  # too late for a status code; the server closes the connection
                raise
            await self._refusal()(scope, receive, send)
