"""Read-only JSON the dashboard's plots need beyond the REST resources: hyperparameter
importance and a downsampled set of learning curves.

* ``GET /studies/{id}/importance`` — random-forest (impurity) importance of each searched
  hyperparameter for the objective, fitted on the finished trials with a finite value.
  Cheap and honest about its limits: it is a ranking of what a forest used to predict the
  objective from the configs, not a causal effect; categorical values are ordinal codes and
  an absent conditional parameter is its own code (-1).
* ``GET /studies/{id}/curves`` — the objective per epoch of the best `top` trials plus a
  seeded random sample of `sample` others, so a study of thousands of trials stays one
  small chart.
* ``GET /studies/{id}/points`` — every trial as (number, status, best value, searched
  params) and nothing else: what the history, parallel-coordinates and slice plots draw,
  in one response a tenth the size of the paged trial documents.
"""

from __future__ import annotations

import math
import random
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, RepoDep
from api.models import error_responses
from api.routes.studies import StudyId
from hpo import service
from hpo.storage.repository import BEST_ELIGIBLE_STATUSES, Repository, StudyRecord, TrialRecord

router = APIRouter(
    prefix="/studies/{study_id}",
    tags=["dashboard"],
    responses=error_responses(401, 404, 422, 503),
)

MIN_TRIALS_FOR_IMPORTANCE = 5
# A forest on more trials ranks the parameters the same and costs seconds on big studies.
MAX_TRIALS_FOR_IMPORTANCE = 2000


class PointPublic(BaseModel):
    number: int
    status: str
    best_value: float | None
    config: dict[str, Any]


class PointsPublic(BaseModel):
    """Every trial of a study, reduced to what the study-level plots draw."""

    data: list[PointPublic]


class ImportancePublic(BaseModel):
    """Importance per hyperparameter (summing to 1), most important first; empty with a
    `reason` when there is too little to fit on."""

    method: str
    n_trials: int
    importances: dict[str, float]
    reason: str | None = None


class CurvePublic(BaseModel):
    number: int
    status: str
    best_value: float | None
    steps: list[int]
    values: list[float | None]


class CurvesPublic(BaseModel):
    """Learning curves of the shown trials; `total` is how many trials the study has."""

    metric: str
    mode: str
    total: int
    best_number: int | None
    data: list[CurvePublic]


@router.get("/importance")
async def importance(study_id: StudyId, repo: RepoDep, user: CurrentUser) -> ImportancePublic:
    """Random-forest importance of the searched hyperparameters (see the module docstring)."""
    study = service.get_visible_study(repo, study_id, user)
    return await run_in_threadpool(_cached_importance, repo, study)


@router.get("/curves")
async def curves(
    study_id: StudyId,
    repo: RepoDep,
    user: CurrentUser,
    top: Annotated[int, Query(ge=0, le=200)] = 50,
    sample: Annotated[int, Query(ge=0, le=200)] = 25,
) -> CurvesPublic:
    """The objective per epoch of the best `top` trials and a sample of `sample` others."""
    study = service.get_visible_study(repo, study_id, user)
    return await run_in_threadpool(_curves, repo, study, top, sample)


@router.get("/points")
async def points(study_id: StudyId, repo: RepoDep, user: CurrentUser) -> PointsPublic:
    """Every trial's number, status, best value and searched params (see the module doc)."""
    study = service.get_visible_study(repo, study_id, user)
    return await run_in_threadpool(_points, repo, study)


def _points(repo: Repository, study: StudyRecord) -> PointsPublic:
    names = _searched(study)
    return PointsPublic(
        data=[
            PointPublic(
                number=t.number,
                status=t.status,
                best_value=t.best_value,
                config={n: t.config[n] for n in names if n in t.config},
            )
            for t in repo.iter_trials(study.id)
        ]
    )


def _searched(study: StudyRecord) -> list[str]:
    space = study.spec.get("space") or {}
    return list(space)


def _encode(values: list[Any]) -> list[float]:
    """Numbers stay numbers; anything else becomes its code in first-seen order; absent
    values (conditional parameters) are -1 below the smallest number or code."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        floor = min(float(v) for v in present) - 1.0
        return [floor if v is None else float(v) for v in values]
    codes: dict[str, int] = {}
    for v in present:
        codes.setdefault(repr(v), len(codes))
    return [-1.0 if v is None else float(codes[repr(v)]) for v in values]


# Importance changes only when trials finish: keyed by the study's trial counts, a page
# reload or a second viewer costs one GROUP BY instead of a forest fit.
# (SQLite may reuse a deleted study's id: its creation time is part of the key.)
_IMPORTANCE_CACHE: dict[tuple[int, str, tuple[tuple[str, int], ...]], ImportancePublic] = {}
_IMPORTANCE_CACHE_SIZE = 64


def _cached_importance(repo: Repository, study: StudyRecord) -> ImportancePublic:
    counts = tuple(sorted(repo.count_trials(study.id).items()))
    key = (study.id, study.created_at.isoformat(), counts)
    result = _IMPORTANCE_CACHE.get(key)
    if result is None:
        result = _importance(repo, study)
        if len(_IMPORTANCE_CACHE) >= _IMPORTANCE_CACHE_SIZE:
            _IMPORTANCE_CACHE.pop(next(iter(_IMPORTANCE_CACHE)))
        _IMPORTANCE_CACHE[key] = result
    return result


def _importance(repo: Repository, study: StudyRecord) -> ImportancePublic:
    method = "random-forest impurity importance"
    names = _searched(study)
    trials = [
        t
        for t in repo.iter_trials(study.id)
        if t.status in BEST_ELIGIBLE_STATUSES
        and t.best_value is not None
        and math.isfinite(t.best_value)
    ]
    if len(trials) > MAX_TRIALS_FOR_IMPORTANCE:
        trials = random.Random(0).sample(trials, MAX_TRIALS_FOR_IMPORTANCE)
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCE or not names:
        reason = f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials with a value"
        return ImportancePublic(method=method, n_trials=len(trials), importances={}, reason=reason)
    # Imported here: scikit-learn costs a second of start-up the rest of the API never needs.
    from sklearn.ensemble import RandomForestRegressor

    columns = [_encode([t.config.get(name) for t in trials]) for name in names]
    x = [list(row) for row in zip(*columns, strict=True)]
    y = [float(t.best_value) for t in trials if t.best_value is not None]
    forest = RandomForestRegressor(n_estimators=64, min_samples_leaf=2, random_state=0)
    forest.fit(x, y)
    ranked = sorted(
        zip(names, (float(v) for v in forest.feature_importances_), strict=True),
        key=lambda item: -item[1],
    )
    return ImportancePublic(method=method, n_trials=len(trials), importances=dict(ranked))


def _curves(repo: Repository, study: StudyRecord, top: int, sample: int) -> CurvesPublic:
    metric = study.objective_metric
    best = repo.list_trials(study.id, sort="best_value", limit=max(top, 1))[:top]
    chosen = {t.number: t for t in best}
    # Trial numbers run 1..last_trial_number, so the sample is drawn from numbers and only
    # the picked trials are read: a 10,000-trial study costs what a 100-trial one does.
    rest = [n for n in range(1, study.last_trial_number + 1) if n not in chosen]
    # Seeded by the study so that refreshing the page shows the same sample.
    picked = random.Random(study.id).sample(rest, min(sample, len(rest)))
    chosen.update({t.number: t for t in repo.trials_by_numbers(study.id, picked)})
    total = sum(repo.count_trials(study.id).values())
    ordered = sorted(chosen.values(), key=lambda t: t.number)
    series = repo.metric_series([t.id for t in ordered], metric)
    data = [_curve(t, series[t.id]) for t in ordered]
    best_trial = repo.best_trial(study.id)
    return CurvesPublic(
        metric=metric,
        mode=study.objective_mode,
        total=total,
        best_number=None if best_trial is None else best_trial.number,
        data=[c for c in data if c.steps],
    )


def _curve(trial: TrialRecord, points: list[tuple[int, float | None]]) -> CurvePublic:
    return CurvePublic(
        number=trial.number,
        status=trial.status,
        best_value=trial.best_value,
        steps=[step for step, _ in points],
        values=[value for _, value in points],
    )
