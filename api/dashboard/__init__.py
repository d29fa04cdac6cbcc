"""The web dashboard: server-rendered page shells (Jinja2) whose one small script fetches
the REST API's JSON, plus the read-only JSON endpoints the plots need (`analysis`) and the
trials a user selected on a plot (`selection`).

`install(app)` adds the pages, the JSON endpoints under `/api/v1` and the static files
(our script and stylesheet, and Plotly's vendored cartesian bundle) to an application
built by `api.app.create_app`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.dashboard import analysis, pages, selection

__all__ = ["install"]


def install(app: FastAPI, api_prefix: str) -> None:
    """Add the dashboard's pages, its JSON endpoints and its static files to `app`."""
    app.include_router(analysis.router, prefix=api_prefix)
    app.include_router(selection.router, prefix=api_prefix)
    app.include_router(pages.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    fallback = app.exception_handlers.get(HTTPException, http_exception_handler)
    app.add_exception_handler(HTTPException, pages.not_found_page(fallback, api_prefix))
