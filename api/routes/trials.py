"""Trials of a study: one page (sorted by any column, hyperparameter or metric, filtered
by status) in one repository call, and one trial with its per-epoch history."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from api.deps import CurrentUser, RepoDep
from api.models import TrialDetail, TrialPublic, TrialsPublic, TrialStatusName, error_responses
from api.routes.studies import MAX_ID, StudyId
from hpo import service
from hpo.errors import FieldError, SpecError
from hpo.storage.repository import PARAM_SORT_PREFIX

router = APIRouter(
    prefix="/studies/{study_id}/trials",
    tags=["trials"],
    responses=error_responses(401, 404, 422, 503),
)


@router.get("")
def list_trials(
    study_id: StudyId,
    repo: RepoDep,
    user: CurrentUser,
    status: TrialStatusName | None = None,
    sort: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="number (default), best_value, last_value, epochs_run, started_at, "
            "param:NAME (a searched hyperparameter) or any reported metric (its value at "
            "the trial's last epoch).",
        ),
    ] = None,
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(description="Default: the objective best first, anything else ascending."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> TrialsPublic:
    """One page of the study's trials; missing values sort last."""
    study = service.get_visible_study(repo, study_id, user)
    if sort is not None and sort.startswith(PARAM_SORT_PREFIX):
        name = sort.removeprefix(PARAM_SORT_PREFIX)
        searched = service.searched_params(study)
        if name not in searched:
            listed = ", ".join(searched) or "none"
            message = f"'{name}' is not a searched hyperparameter of this study ({listed})"
            raise SpecError([FieldError("query.sort", message)])
    descending = None if order is None else order == "desc"
    rows = repo.list_trials(
        study_id, status=status, sort=sort, descending=descending, limit=limit, offset=offset
    )
    counts = repo.count_trials(study_id)
    count = counts.get(status, 0) if status is not None else sum(counts.values())
    return TrialsPublic(data=[TrialPublic.of(t) for t in rows], count=count)


@router.get("/{number}")
def read_trial(
    study_id: StudyId,
    number: Annotated[int, Path(ge=1, le=MAX_ID, description="The trial's number.")],
    repo: RepoDep,
    user: CurrentUser,
) -> TrialDetail:
    """A trial with its config, provenance, every metric of every epoch and its events."""
    service.get_visible_study(repo, study_id, user)
    trial = repo.get_trial(study_id, number)
    return TrialDetail.with_history(
        trial, repo.trial_metrics(trial.id), repo.trial_events(study_id, trial.id)
    )


@router.get(
    "/{number}/weights",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read_trial_weights(
    study_id: StudyId,
    number: Annotated[int, Path(ge=1, le=MAX_ID, description="The trial's number.")],
    repo: RepoDep,
    user: CurrentUser,
) -> Response:
    """The trial's delivered model: ``torch.save`` of its ``state_dict`` and config (see
    `hpo.weights`); 404 when the trial saved no checkpoint."""
    from hpo.weights import trial_weights

    service.get_visible_study(repo, study_id, user)
    data = trial_weights(repo, study_id, number)
    filename = f"study{study_id}-trial{number}-weights.pt"
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
