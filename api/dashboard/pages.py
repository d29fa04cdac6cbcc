"""The dashboard's pages: HTML shells rendered by Jinja2; `static/dashboard.js` fills them
from the REST API (so a page shows exactly what `/api/v1` serves, with the same rules of
who may see what).

While authentication is off, a page checks that its study or trial exists and answers an
HTML 404 page otherwise. With authentication on, the server cannot know the caller (the
token lives in the browser's sessionStorage and travels in the script's fetches), so the
page is a shell with a login form and the script shows "not found" for a 404 of the API.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.deps import RepoDep
from hpo import service
from hpo.storage.errors import NotFoundError
from hpo.storage.repository import Repository

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
# Plotly's JavaScript, never from a CDN. Every plot needs only the cartesian bundle
# (static/vendor, from npm's plotly.js-cartesian-dist-min, MIT): a third the size of the
# full bundle and a third of its cold start in the browser (0.9 s vs 2.5 s measured here).
# The parallel coordinates are drawn with its SVG scatter lines, brushing included, so no
# page needs the full bundle's WebGL parcoords.
VENDOR_FILES = {
    "plotly-cartesian.min.js": STATIC_DIR / "vendor" / "plotly-cartesian.min.js",
}


def _versioned(name: str) -> str:
    """The bundle's URL with its content hash: a browser keeps it for a year without
    revalidating, and an upgrade changes the URL."""
    digest = hashlib.sha256(VENDOR_FILES[name].read_bytes()).hexdigest()[:12]
    return f"/static/vendor/{name}?v={digest}"


PLOTLY_URL = _versioned("plotly-cartesian.min.js")
TRIALS_PER_PAGE = 100
# What the "new study" form starts with: a quick search of the built-in training core.
EXAMPLE_SPEC = """\
name: my-search
objective: {metric: val_accuracy, mode: max}
trainable: {dataset: digits, model: mlp}
budget: {trials: 10, max_epochs: 10, min_epochs: 2, concurrency: 2}
strategy: {sampler: tpe, scheduler: asha, seed: 0}
space:
  optimizer: {choice: [sgd, momentum, adam, adamw]}
  lr: {loguniform: [1.0e-4, 0.3]}
  hidden: {int: [32, 512], log: true}
  dropout: {uniform: [0.0, 0.5]}
fixed: {schedule: cosine, warmup_epochs: 1}
"""
MAX_COMPARED = 4

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter()


def _page(
    request: Request,
    repo: Repository,
    template: str,
    title: str,
    data: dict[str, Any],
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    auth = service.auth_enabled(repo)
    page_data = {**data, "auth": auth, "plotlyUrl": PLOTLY_URL}
    context = {"title": title, "plotly_url": PLOTLY_URL, "page_data": page_data, **extra}
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _error(request: Request, repo: Repository, status_code: int, message: str) -> HTMLResponse:
    return _page(
        request,
        repo,
        "error.html",
        "Not found" if status_code == 404 else "Bad request",
        {"page": "error", "message": message},
        status_code,
    )


def _id(raw: str) -> int | None:
    """A positive 32-bit id from a path segment, or None (answered by a 404 page)."""
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None


def _missing(repo: Repository, study_id: int, number: int | None = None) -> str | None:
    """Why the study (or its trial) cannot be shown, or None; only checked while auth is
    off (see the module docstring)."""
    if service.auth_enabled(repo):
        return None
    try:
        repo.get_study(study_id)
        if number is not None:
            repo.get_trial(study_id, number)
    except NotFoundError as exc:
        return str(exc)
    return None


@router.get("/static/vendor/{name}")
def vendor_js(name: str) -> Response:
    """Plotly's bundles (see `VENDOR_FILES`), cached for a year (their URLs are versioned)."""
    path = VENDOR_FILES.get(name)
    if path is None:
        return Response(status_code=404)
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    return FileResponse(path, media_type="text/javascript", headers=headers)


@router.get("/", response_class=HTMLResponse)
def studies_page(request: Request, repo: RepoDep) -> HTMLResponse:
    """Every study with its progress and best value; running ones refresh live."""
    return _page(
        request, repo, "studies.html", "Studies", {"page": "studies"}, example_spec=EXAMPLE_SPEC
    )


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study_page(request: Request, repo: RepoDep, study_id: str) -> HTMLResponse:
    """One study: summary, trials table and plots."""
    sid = _id(study_id)
    reason = f"no study with id {study_id}" if sid is None else _missing(repo, sid)
    if sid is None or reason:
        return _error(request, repo, 404, reason or "")
    data = {"page": "study", "studyId": sid, "perPage": TRIALS_PER_PAGE}
    return _page(request, repo, "study.html", f"Study {sid}", data)


@router.get("/studies/{study_id}/trials/{number}", response_class=HTMLResponse)
def trial_page(request: Request, repo: RepoDep, study_id: str, number: str) -> HTMLResponse:
    """One trial: config, provenance, status and its per-epoch metrics."""
    sid, num = _id(study_id), _id(number)
    if sid is None or num is None:
        return _error(request, repo, 404, f"no trial {number} in study {study_id}")
    if reason := _missing(repo, sid, num):
        return _error(request, repo, 404, reason)
    # The weights link only where the trial saved a checkpoint to take them from.
    weights = bool(repo.get_trial(sid, num).last_checkpoint)
    data = {"page": "trial", "studyId": sid, "number": num, "weights": weights}
    return _page(request, repo, "trial.html", f"Study {sid} · trial {num}", data)


@router.get("/studies/{study_id}/compare", response_class=HTMLResponse)
def compare_page(request: Request, repo: RepoDep, study_id: str, trials: str = "") -> HTMLResponse:
    """2–4 trials side by side (``?trials=1,4,7``): configs and curves."""
    sid = _id(study_id)
    reason = f"no study with id {study_id}" if sid is None else _missing(repo, sid)
    if sid is None or reason:
        return _error(request, repo, 404, reason or "")
    parts = [part.strip() for part in trials.split(",") if part.strip()]
    numbers = [_id(part) for part in parts]
    if absent := next(
        (p for p, n in zip(parts, numbers, strict=True) if n is None and p.isdigit()), None
    ):
        return _error(request, repo, 404, f"no trial {absent} in study {sid}")
    unique = list(dict.fromkeys(numbers))
    if None in unique or not 2 <= len(unique) <= MAX_COMPARED:
        message = f"compare 2 to {MAX_COMPARED} trials by number, e.g. ?trials=1,4,7"
        return _error(request, repo, 400, message)
    for n in unique:
        assert n is not None
        if reason := _missing(repo, sid, n):
            return _error(request, repo, 404, reason)
    data = {"page": "compare", "studyId": sid, "numbers": unique}
    return _page(request, repo, "compare.html", f"Study {sid} · compare", data)


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def not_found_page(fallback: Handler, api_prefix: str) -> Handler:
    """The application's HTTP-error handler, except that a browser asking for an unknown
    page (a GET for HTML, outside the API and the static files) gets the dashboard's HTML
    404 page instead of the API's JSON error."""

    async def handler(request: Request, exc: Exception) -> Response:
        answer = fallback(request, exc)
        response = await answer if inspect.isawaitable(answer) else answer
        path = request.url.path
        wants_page = (
            response.status_code == 404
            and request.method in ("GET", "HEAD")
            and "text/html" in request.headers.get("accept", "")
            and not path.startswith((api_prefix + "/", "/static/"))
        )
        if not wants_page:
            return response
        repo = request.app.state.repo
        return await run_in_threadpool(_error, request, repo, 404, f"There is no page at {path}.")

    return handler
