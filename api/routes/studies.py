"""Studies: submit a spec, list, read, cancel, delete, best trial, export, live events.

Every route checks visibility through `hpo.service` (a user sees only their own studies,
an admin all; another user's study is a 404, never a 403, so ids do not leak).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, RepoDep, SettingsDep
from api.models import (
    BestTrialPublic,
    EventPublic,
    ParetoPublic,
    ParetoTrialPublic,
    StudiesPublic,
    StudyDetail,
    StudyPublic,
    StudyStatusName,
    StudySummary,
    TrialPublic,
    error_responses,
)
from hpo import export as exporter
from hpo import service
from hpo.config import Settings
from hpo.documents import pareto_document, reproduce_command, value_label
from hpo.errors import FieldError, SpecError
from hpo.space import MAX_ERRORS, check_budget, time_budget
from hpo.spec import StudySpec, apply_overrides, load_spec, parse_text, read_number
from hpo.storage.errors import NotFoundError, StorageError
from hpo.storage.repository import FINISHED_STUDY_STATUSES, Repository, StudyRecord

router = APIRouter(prefix="/studies", tags=["studies"], responses=error_responses(401, 503))

# Ids are 32-bit in the schema; a larger one is refused as input rather than sent to the
# database (PostgreSQL would answer "integer out of range").
MAX_ID = 2**31 - 1
StudyId = Annotated[int, Path(ge=1, le=MAX_ID, description="The study's id.")]

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
# Event kinds after which a study's log ends (hpo.execution.driver, hpo.service).
TERMINAL_EVENTS = frozenset({"completed", "failed", "cancelled"})
EVENTS_BATCH = 500
KEEPALIVE_S = 15.0

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/StudyCreate"}},
            "application/yaml": {
                "schema": {"type": "string", "description": "The same spec written in YAML."}
            },
        },
    }
}


def _spec_error(field: str, message: str) -> SpecError:
    return SpecError([FieldError(field, message)])


def _parse_body(body: bytes, content_type: str) -> Any:
    """The body as a mapping; every problem becomes a `SpecError` (422)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _spec_error("body", "is not UTF-8 text") from None
    try:
        if content_type in YAML_TYPES:
            data: Any = parse_text(text)
        else:
            data = _parse_json(text)
    except RecursionError:
        raise _spec_error("body", "nested too deeply") from None
    if not isinstance(data, dict):
        raise _spec_error("body", "a spec must be an object of fields (name, objective, …)")
    # Only an escape can write NUL or a lone surrogate (the text itself is valid UTF-8, and
    # both parsers refuse a raw NUL): most bodies skip the walk.
    if "\\" in text and (errors := _unstorable_text(data)):
        raise SpecError(errors)
    return data


def _parse_json(text: str) -> Any:
    try:
        return json.loads(
            text,
            parse_int=lambda s: read_number(s, int),
            parse_float=lambda s: read_number(s, float),
        )
    except json.JSONDecodeError as exc:
        raise _spec_error(
            "body", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def _unstorable_text(data: dict[str, Any]) -> list[FieldError]:
    """A field for each string (key or value) that no database stores: NUL (PostgreSQL
    text cannot hold it) or a lone surrogate (not UTF-8). Each container is visited once,
    however often YAML aliases repeat it (a 700-byte alias bomb stands for millions of
    nodes), so the walk is linear in the text."""
    errors = []
    seen: set[int] = {id(data)}
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        check_budget()
        path, node = stack.pop()
        items: Any = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if _unstorable(key) or _unstorable(value):
                where = ".".join(_shown(part) for part in (*path, key))
                errors.append(FieldError(where, "text with NUL or invalid Unicode"))
                if len(errors) >= MAX_ERRORS:
                    return errors
            elif isinstance(value, dict | list) and id(value) not in seen:
                seen.add(id(value))
                stack.append(((*path, key), value))
    return errors


def _unstorable(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(key: Any) -> str:
    # The key as a field path can print and encode (its bad characters escaped).
    text = str(key)
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _load(
    body: bytes,
    content_type: str,
    settings: Settings,
    strategy: str | None,
    trials: int | None,
) -> StudySpec:
    # One time budget for the whole of it: a worker thread is never held for long, and
    # the work stops with the refusal (it does not go on after the client has gone).
    with time_budget(settings.validation_budget_s):
        data = _parse_body(body, content_type)
        if errors := service.rest_init_from_errors(data):
            raise SpecError(errors)
        try:
            spec = load_spec(data)
            if strategy is not None or trials is not None:
                spec = apply_overrides(spec, strategy=strategy, trials=trials)
        except RecursionError:
            raise _spec_error("body", "nested too deeply") from None
        allowed = settings.allowed_modules
    # The one parser of module:function references decides, before anything is stored
    # (and so before any trial could import anything).
    if errors := service.check_references(spec, allowed):
        raise SpecError(errors)
    return spec


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_BODY_DOC,
    responses=error_responses(413, 415, 422, 429),
)
async def create_study(
    request: Request,
    repo: RepoDep,
    user: CurrentUser,
    settings: SettingsDep,
    strategy: Annotated[
        str | None,
        Query(min_length=1, max_length=50, description="Override the spec's strategy."),
    ] = None,
    trials: Annotated[
        int | None, Query(ge=1, le=100_000, description="Override budget.trials.")
    ] = None,
) -> StudyPublic:
    """Queue a study from a spec (JSON, or YAML with `Content-Type: application/yaml`).

    The spec is validated exactly as `hpo run` validates a file; a runner of `hpo serve`
    picks the study up. The caller becomes its owner. A user past their limits of queued
    and running studies or of concurrent trials gets 429 with `Retry-After`.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type not in JSON_TYPES | YAML_TYPES:
        raise _unsupported_media_type(content_type)
    body = await request.body()
    spec = await run_in_threadpool(_load, body, content_type, settings, strategy, trials)
    if errors := await run_in_threadpool(service.invisible_init_from_errors, repo, spec, user):
        raise SpecError(errors)
    owner = user.identity if user is not None else None
    limits = service.Limits(
        active_studies=settings.max_active_studies_per_user,
        concurrent_trials=settings.max_concurrent_trials_per_user,
        retry_after_s=settings.retry_after_s,
    )
    study = await run_in_threadpool(
        service.submit_within_limits, repo, spec, owner=owner, limits=limits
    )
    return StudyPublic.of(study)


def _unsupported_media_type(content_type: str) -> HTTPException:
    message = (
        f"unsupported content type '{content_type or 'none'}'; "
        "send application/json or application/yaml"
    )
    return HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=[{"field": "header.Content-Type", "message": message}],
    )


@router.get("", responses=error_responses(422))
def list_studies(
    repo: RepoDep,
    user: CurrentUser,
    status: StudyStatusName | None = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> StudiesPublic:
    """Studies, newest first, filtered by status and owner; a user sees only their own."""
    if user is not None and not user.admin:
        if owner is not None and owner != user.identity:
            return StudiesPublic(data=[], count=0)
        owner = user.identity
    rows = repo.list_studies(status=status, owner=owner, limit=limit, offset=offset)
    count = repo.count_studies(status=status, owner=owner)
    counts = repo.count_trials_of([s.id for s in rows])
    return StudiesPublic(
        data=[StudySummary.with_counts(s, counts[s.id]) for s in rows], count=count
    )


@router.get("/{study_id}", responses=error_responses(404, 422))
def read_study(study_id: StudyId, repo: RepoDep, user: CurrentUser) -> StudyDetail:
    """A study with its trial counts per status and its best trial."""
    study = service.get_visible_study(repo, study_id, user)
    return StudyDetail.with_trials(study, repo.count_trials(study_id), repo.best_trial(study_id))


@router.post("/{study_id}/cancel", responses=error_responses(404, 409, 422))
def cancel_study(study_id: StudyId, repo: RepoDep, user: CurrentUser) -> StudyPublic:
    """Cancel a queued or running study (its runner stops its trials); 409 if finished."""
    return StudyPublic.of(service.cancel_study(repo, study_id, user=user))


@router.delete(
    "/{study_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(404, 409, 422),
)
def delete_study(study_id: StudyId, repo: RepoDep, user: CurrentUser) -> Response:
    """Delete a study with its trials, metrics and events; 409 while it runs."""
    service.delete_study(repo, study_id, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{study_id}/best", responses=error_responses(404, 422))
def best_trial(study_id: StudyId, repo: RepoDep, user: CurrentUser) -> BestTrialPublic:
    """The best trial (among those that ran their full budget; pruned ones only when none
    did) with its full config and reproduce command; 404 while there is none."""
    study = service.get_visible_study(repo, study_id, user)
    trial = repo.best_trial(study_id)
    if trial is None:
        raise NotFoundError(
            f"study {study_id} has no finished trial with a finite {study.objective_metric} yet"
        )
    return BestTrialPublic(
        **TrialPublic.of(trial).model_dump(),
        value_label=value_label(study),
        test_metrics=trial.provenance.get("test_metrics"),
        reproduce=reproduce_command(study.id, trial.number),
    )


@router.get("/{study_id}/pareto", responses=error_responses(404, 422))
def pareto_set(study_id: StudyId, repo: RepoDep, user: CurrentUser) -> ParetoPublic:
    """The Pareto set: completed trials that no other completed trial beats on every
    objective, with their values (empty while there is none). For one objective, the
    trials sharing the best value."""
    study = service.get_visible_study(repo, study_id, user)
    trials = repo.pareto_trials(study_id)
    document = pareto_document(study, [])
    return ParetoPublic(
        study_id=study.id,
        objectives=document["objectives"],
        params=document["params"],
        pareto=[
            ParetoTrialPublic(
                **TrialPublic.of(t).model_dump(), reproduce=reproduce_command(study.id, t.number)
            )
            for t in trials
        ],
    )


@router.get(
    "/{study_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV (one row per trial) or JSON (trials with their histories).",
            "content": {"text/csv": {}, "application/json": {}},
        },
        **error_responses(404, 422),
    },
)
def export_study(
    study_id: StudyId,
    repo: RepoDep,
    user: CurrentUser,
    format: Literal["csv", "json"] = "json",
) -> StreamingResponse:
    """The study exported as `hpo export` writes it, streamed from a spooled file so the
    database read ends before the response starts."""
    study = service.get_visible_study(repo, study_id, user)
    # Not a `with`: the response's iterator (`_chunks`) closes it once sent.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+", newline="")  # noqa: SIM115
    try:
        write = exporter.to_csv if format == "csv" else exporter.to_json
        write(repo, study, spool)  # type: ignore[arg-type]
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    media = "text/csv" if format == "csv" else "application/json"
    return StreamingResponse(
        _chunks(spool),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}.{format}"'},
    )


def _chunks(stream: IO[str], size: int = 64 * 1024) -> Iterator[str]:
    try:
        while chunk := stream.read(size):
            yield chunk
    finally:
        stream.close()


@router.get(
    "/{study_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: `id:` event id, `event:` kind, `data:` an "
            "EventPublic as JSON. Ends after the study's terminal event.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(404, 422),
    },
)
def study_events(
    study_id: StudyId,
    request: Request,
    repo: RepoDep,
    user: CurrentUser,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, le=2**63 - 1, description="Resume after this id."),
    ] = None,
) -> StreamingResponse:
    """The study's log as it grows, polled every ~0.5 s, resumable with `Last-Event-ID`."""
    service.get_visible_study(repo, study_id, user)
    poll_s: float = request.app.state.events_poll_s
    return StreamingResponse(
        _event_stream(request, repo, study_id, last_event_id or 0, poll_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: EventPublic) -> str:
    return f"id: {event.id}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"


async def _event_stream(
    request: Request, repo: Repository, study_id: int, after: int, poll_s: float
) -> AsyncIterator[str]:
    """Send every event after `after`, then poll for more until a terminal one.

    A study that finished without a terminal event row (or one whose terminal event the
    client already has, resuming) ends with a synthetic event of its status and no id.
    A database error ends the stream; the client resumes with `Last-Event-ID`.
    """
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    try:
        while not await request.is_disconnected():
            events = await run_in_threadpool(
                repo.list_events, study_id, after_id=after, limit=EVENTS_BATCH
            )
            for record in events:
                yield _sse(EventPublic.of(record))
                after = record.id
                if record.kind in TERMINAL_EVENTS:
                    return
            if len(events) == EVENTS_BATCH:
                continue
            if events:
                last_sent = loop.time()
            else:
                study: StudyRecord = await run_in_threadpool(repo.get_study, study_id)
                if study.status in FINISHED_STUDY_STATUSES:
                    # Events may have landed between the two reads: send them first.
                    late = await run_in_threadpool(
                        repo.list_events, study_id, after_id=after, limit=EVENTS_BATCH
                    )
                    for record in late:
                        yield _sse(EventPublic.of(record))
                        if record.kind in TERMINAL_EVENTS:
                            return
                    data = json.dumps({"study_id": study_id, "kind": study.status})
                    yield f"event: {study.status}\ndata: {data}\n\n"
                    return
                if loop.time() - last_sent >= KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    last_sent = loop.time()
            await asyncio.sleep(poll_s)
    except StorageError:
        return
