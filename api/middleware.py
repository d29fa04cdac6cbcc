"""ASGI middleware: a request-body size limit enforced before the body is read, and the
guard of a server running without tokens (`LocalOnly`).

Starlette and FastAPI read any body whole (fastapi #1181), so a client could make the
server buffer gigabytes. `BodySizeLimit` is plain ASGI: it refuses a declared
`Content-Length` above the limit at once, and counts the bytes of a streamed (chunked)
body as they arrive, answering 413 as soon as the count passes the limit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_plus

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpo.service import is_loopback


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


# --- no-token mode --------------------------------------------------------------------------

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _refusal(field: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": [{"field": field, "message": message}]}, status_code=403)


class LocalOnly:
    """What keeps a server without tokens (and so without authentication) local.

    Such a server binds only loopback addresses (`hpo serve` refuses others), but a web
    page the user visits can still reach it through the browser: a cross-site form POST,
    or DNS rebinding (a foreign name resolving to 127.0.0.1, which makes the page
    same-origin with the server). So while no token exists, this answers 403 to:

    * a `Host` that is not a loopback name or address (rebinding reads and writes);
    * a write (any method but GET, HEAD, OPTIONS) whose `Origin` is not the server's own
      (a page elsewhere), or that a browser marks ``Sec-Fetch-Site: cross-site``;
    * a write whose `Content-Type` is not JSON or YAML (what HTML forms send, and what
      a page can send without a CORS preflight).

    `auth_enabled` is awaited per request: creating a token turns this off at once.
    """

    def __init__(
        self,
        app: ASGIApp,
        auth_enabled: Callable[[], Awaitable[bool]],
        body_types: frozenset[str],
    ) -> None:
        self.app = app
        self.auth_enabled = auth_enabled
        self.body_types = body_types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or await self.auth_enabled():
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not is_loopback(_hostname(host)):
            return _refusal(
                "header.Host",
                f"host {host!r} refused: without API tokens this server answers only "
                "loopback names (localhost, 127.0.0.1, [::1]); create a token "
                "(hpo token create) to serve other names",
            )
        if scope["method"] in _SAFE_METHODS:
            return None
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{host}".lower()
        if origin is not None and origin.lower() != own:
            return _refusal(
                "header.Origin",
                f"cross-site write refused: origin {origin!r} is not this server ({own}); "
                "without API tokens only this server's own pages and local clients may "
                "write",
            )
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return _refusal("header.Sec-Fetch-Site", "cross-site write refused")
        content_type = headers.get("content-type")
        if content_type is not None:
            media = content_type.partition(";")[0].strip().lower()
            if media not in self.body_types:
                return _refusal(
                    "header.Content-Type",
                    f"content type {media!r} refused: without API tokens a write must send "
                    "JSON or YAML (what a web form cannot)",
                )
        return None


def _hostname(host: str) -> str:
    """The name of a Host header value: ``[::1]:8000`` → ``::1``, ``a:80`` → ``a``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


# --- access log -------------------------------------------------------------------------------

# Query parameters whose values are credentials, whatever a client put there.
_CREDENTIAL = re.compile(r"token|key|secret|passw|auth|session|sig", re.IGNORECASE)


class RedactCredentials(logging.Filter):
    """Keeps credentials out of uvicorn's access log: the value of any query parameter
    named like one (``?token=…``, ``api_key``, ``password``…) is written ``[redacted]``.
    The API never reads a token from the URL, but a client may still send one there."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def redact_query(path: str) -> str:
    """`path` (with its query string) with the values of credential parameters hidden
    (names are matched percent-decoded: ``%74oken`` is ``token``)."""
    base, mark, rest = path.partition("?")
    if not mark:
        return path
    query, hash_, fragment = rest.partition("#")
    params = []
    for param in query.split("&"):
        name, eq, _ = param.partition("=")
        credential = eq and _CREDENTIAL.search(unquote_plus(name))
        params.append(f"{name}=[redacted]" if credential else param)
    return f"{base}?{'&'.join(params)}{hash_}{fragment}"


def redact_access_log() -> None:
    """Install `RedactCredentials` on uvicorn's access logger (once per process)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactCredentials) for f in access.filters):
        access.addFilter(RedactCredentials())
