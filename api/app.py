"""The application factory: `create_app(db_url)` wires settings, the repository, the
body-size limit, the error shapes and the routers of `/api/v1`.

Every error leaves as `ErrorPublic` (``{"detail": [{"field", "message"}]}``) — FastAPI's
own request validation included — and no input, however bad, gets a 500 or a traceback.

Run it with ``hpo serve`` (which also starts the runners that execute queued studies).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

import hpo
from api import dashboard
from api.deps import CurrentUser, storable_query
from api.middleware import BodySizeLimit, LocalOnly, redact_access_log
from api.models import StudyCreate
from api.routes import api_router, health, studies
from hpo import references, service
from hpo.config import Settings, get_settings
from hpo.errors import SpecError, path_of
from hpo.storage.errors import NotFoundError, StorageError
from hpo.storage.repository import Repository

API_PREFIX = "/api/v1"
log = logging.getLogger("hpo.api")


def create_app(db_url: str | None = None, *, settings: Settings | None = None) -> FastAPI:
    """An application serving the database at `db_url` (default: HPO_DATABASE_URL).

    The repository is opened (and the schema created or checked) when the application
    starts, and closed when it stops. `settings` defaults to the process's HPO_* ones.
    """
    settings = settings or get_settings()
    url = db_url or settings.database_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A request waits out a short database hiccup only; past that it answers 503.
        app.state.repo = Repository(url, retry_s=settings.api_storage_retry_s)
        dashboard.analysis.warm_up()
        try:
            yield
        finally:
            app.state.repo.close()

    app = FastAPI(
        title="hpo",
        version=hpo.__version__,
        description="Hyperparameter search for PyTorch: submit studies, follow them, read "
        "every trial and metric.",
        # Served below, behind the token; no /docs or /redoc: FastAPI's pages load Swagger
        # UI and ReDoc from a CDN, and a server may be offline (clients read the JSON).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(storable_query)],
    )
    app.state.settings = settings
    redact_access_log()
    app.state.events_poll_s = 0.5

    async def auth_enabled() -> bool:
        return await run_in_threadpool(service.auth_enabled, app.state.repo)

    app.add_middleware(
        LocalOnly, auth_enabled=auth_enabled, body_types=studies.JSON_TYPES | studies.YAML_TYPES
    )
    # Added last, so it runs first: an oversized body is refused before anything else.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    for exc_type, handler in _HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.include_router(api_router, prefix=API_PREFIX)
    # Health checks of load balancers and containers expect a fixed, unversioned path.
    app.include_router(health.router, include_in_schema=False)
    dashboard.install(app, API_PREFIX)
    app.openapi = _openapi_with_spec(app)  # type: ignore[method-assign]

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    def openapi_document(user: CurrentUser) -> JSONResponse:
        # Like every route but /healthz, it needs a token once authentication is on.
        return JSONResponse(app.openapi())

    # Registered last: it answers OPTIONS only where no route of the path does.
    @app.options("/{path:path}", include_in_schema=False)
    def options(request: Request) -> Response:
        methods = allowed_methods(request)
        if not methods:
            return _error(404, _message("", "not found"))
        return Response(status_code=204, headers={"Allow": ", ".join(methods)})

    return app


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the application serves at the request's path (HEAD
    with GET, OPTIONS whenever any), for `Allow` headers. A path served by several routes
    (GET and POST /studies) lists them all, which Starlette's own 405 does not."""
    methods = {
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    }
    if methods:
        methods |= {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
    return sorted(methods)


# --- errors -------------------------------------------------------------------------------


def _error(status: int, items: list[dict[str, str]], headers: Any = None) -> JSONResponse:
    return JSONResponse({"detail": items}, status_code=status, headers=headers)


def _message(field: str, message: str) -> list[dict[str, str]]:
    return [{"field": field, "message": message}]


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    items = detail if isinstance(detail, list) else _message("", str(detail))
    headers = exc.headers
    if exc.status_code == 405:
        # The OPTIONS route matches every path: a path no other route serves is a 404.
        methods = allowed_methods(request)
        if not methods:
            return _error(404, _message("", "not found"))
        headers = {**(headers or {}), "Allow": ", ".join(methods)}
    return _error(exc.status_code, items, headers)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        {"field": path_of(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    return _error(422, items)


async def _on_spec(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpecError)
    return _error(422, exc.as_dicts())


async def _on_not_found(request: Request, exc: Exception) -> JSONResponse:
    # PermissionDenied answers like a missing study: whether an id exists is not told.
    message = str(exc) if isinstance(exc, NotFoundError) else "not found"
    return _error(404, _message("", message))


async def _on_conflict(request: Request, exc: Exception) -> JSONResponse:
    return _error(409, _message("", str(exc)))


async def _on_limit(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, service.LimitExceeded)
    headers = {"Retry-After": str(exc.retry_after_s)}
    return _error(429, _message("", str(exc)), headers)


async def _on_storage(request: Request, exc: Exception) -> JSONResponse:
    # The driver's message may hold SQL and parameters: log it, answer generically.
    log.error("database error on %s %s: %s", request.method, request.url.path, exc)
    return _error(503, _message("", "the database is unavailable; try again later"))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, _message("", "internal error"))


_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Any]] = {
    StarletteHTTPException: _on_http,
    RequestValidationError: _on_validation,
    SpecError: _on_spec,
    NotFoundError: _on_not_found,
    service.PermissionDenied: _on_not_found,
    service.Conflict: _on_conflict,
    service.LimitExceeded: _on_limit,
    StorageError: _on_storage,
    Exception: _on_unexpected,
}


# --- OpenAPI ------------------------------------------------------------------------------


# What `Trainable`'s validator demands, said in the schema so that a client (or a fuzzer)
# reading it does not send `trainable: {}`: a function alone, or a dataset (and model).
_TRAINABLE_KINDS = [
    {
        "title": "User function",
        "required": ["function"],
        "properties": {
            "function": {"type": "string", "pattern": references.JSON_SCHEMA_PATTERN},
            "dataset": {"type": "null"},
            "model": {"type": "null"},
        },
    },
    {
        "title": "Built-in training core",
        "required": ["dataset"],
        "properties": {"dataset": {"type": "string"}, "function": {"type": "null"}},
    },
]


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from the answers that name studies and trials (a created study, a
    page of studies, a page of trials) to the operations on them, so that a client — or
    a stateful fuzzer — can follow ids that exist. The events stream is left out: it
    never ends for a study that does not."""
    studies, one = f"{API_PREFIX}/studies", f"{API_PREFIX}/studies/{{study_id}}"
    on_study = {
        op["operationId"]: method
        for path, ops in paths.items()
        if path.startswith(one) and "{number}" not in path and not path.endswith("/events")
        for method, op in ops.items()
    }

    def to_study(where: str) -> dict[str, Any]:
        return {name: {"operationId": name, "parameters": {"study_id": where}} for name in on_study}

    paths[studies]["post"]["responses"]["201"]["links"] = to_study("$response.body#/id")
    paths[studies]["get"]["responses"]["200"]["links"] = to_study("$response.body#/data/0/id")
    trial = paths[f"{one}/trials/{{number}}"]["get"]["operationId"]
    paths[f"{one}/trials"]["get"]["responses"]["200"]["links"] = {
        trial: {
            "operationId": trial,
            "parameters": {
                "study_id": "$request.path.study_id",
                "number": "$response.body#/data/0/number",
            },
        }
    }


def _openapi_with_spec(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema plus `StudyCreate` (and the spec's nested models) as components.

    ``POST /studies`` reads its body itself (it accepts JSON and YAML), so FastAPI does
    not see the spec model; the route's request body refers to it by `$ref`.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            spec = StudyCreate.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(spec.pop("$defs", {}))
            components["StudyCreate"] = spec
            components["Trainable"]["oneOf"] = _TRAINABLE_KINDS
            _add_links(schema["paths"])
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
