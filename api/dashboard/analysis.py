"""Read-only JSON the dashboard's plots need beyond the REST resources: hyperparameter
importance and a downsampled set of learning curves.

* ``GET /studies/{id}/importance`` — random-forest (impurity) importance of each searched
  hyperparameter for the objective, fitted on the finished trials with a finite value.
  Cheap and honest about its limits: it is a ranking of what a forest used to predict the
  objective from the configs, not a causal effect; categorical values are ordinal codes and
  an absent conditional parameter is its own code (-1).
* ``GET /studies/{id}/curves`` — one metric per epoch (the objective unless `metric` names
  another, e.g. ``lr`` for the learning-rate trace) of the best `top` trials plus a seeded
  random sample of `sample` others, so a study of thousands of trials stays one small chart;
  running trials (the newest `MAX_RUNNING_CURVES`) are always among them, so a live study
  shows their partial curves as epochs arrive. With `numbers`, exactly those trials (a
  selection on the page).
* ``GET /studies/{id}/points`` — every trial with a finite value (completed, pruned,
  failed and running alike, each with its status and epochs run) as (number, status,
  value, epochs, searched params): what the history, parallel-coordinates and slice plots
  draw, one marker style per status. Past
  `limit` of them it is a sample (the best quarter of `limit` and a seeded random draw from
  the rest, streamed in O(limit) memory), because a browser drawing 10,000 markers per
  plot is slow and shows no more; `best_so_far` stays exact over every finished
  (completed or pruned) trial.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.dashboard.selection import parse_numbers
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
# Markers a plot draws before /points samples: enough to see every region of a space.
DEFAULT_POINTS = 500
MAX_POINTS = 5000
# Running trials whose partial curves are always drawn: every one of a usual study.
MAX_RUNNING_CURVES = 50
# Curves of a selection: more lines than this are a tangle, not a picture.
MAX_SELECTED_CURVES = 200


class PointPublic(BaseModel):
    number: int
    status: str
    value: float | None = Field(description="The trial's one value (objective.value).")
    epochs_run: int = Field(description="Epochs reported; where a pruned trial stopped.")
    config: dict[str, Any]


class BestSoFarPublic(BaseModel):
    """A trial that improved on every finished trial numbered before it."""

    number: int
    value: float


class PointsPublic(BaseModel):
    """The trials with a value, reduced to what the study-level plots draw.

    `total` is how many there are, `data` the ones shown (all of them up to `limit`, then
    the `best_shown` best finished ones and a random sample, by number) and `best_so_far`
    the exact improvements over the finished (completed or pruned) ones.
    """

    total: int
    best_shown: int
    best_so_far: list[BestSoFarPublic]
    data: list[PointPublic]


class ImportancePublic(BaseModel):
    """Importance per hyperparameter (summing to 1), most important first; empty with a
    `reason` when there is too little to fit on."""

    method: str
    n_trials: int
    counts: dict[str, int] = Field(
        default_factory=dict, description="The fitted trials per status (completed, pruned)."
    )
    importances: dict[str, float]
    reason: str | None = None


class CurvePublic(BaseModel):
    number: int
    status: str
    value: float | None
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
    metric: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="default: the study's objective"),
    ] = None,
    numbers: Annotated[
        str | None,
        Query(max_length=MAX_SELECTED_CURVES * 11, description="only these trials: 3,8,12"),
    ] = None,
) -> CurvesPublic:
    """A metric per epoch of the best `top` trials, a sample of `sample` others and the
    running ones; or of the trials listed in `numbers`."""
    study = service.get_visible_study(repo, study_id, user)
    wanted = (
        None if numbers is None else parse_numbers(numbers, "query.numbers", MAX_SELECTED_CURVES)
    )
    return await run_in_threadpool(_curves, repo, study, top, sample, metric, wanted)


@router.get("/points")
async def points(
    study_id: StudyId,
    repo: RepoDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=MAX_POINTS)] = DEFAULT_POINTS,
) -> PointsPublic:
    """Every valued trial's number, status, value, epochs and searched params, sampled
    past `limit` (see the module docstring)."""
    study = service.get_visible_study(repo, study_id, user)
    return await run_in_threadpool(_points, repo, study, limit)


def _points(repo: Repository, study: StudyRecord, limit: int) -> PointsPublic:
    """One streamed pass over (number, status, value) keeps the exact best-so-far, the
    `limit // 4` best finished trials (a heap) and a uniform reservoir sample of `limit`;
    then the chosen trials only are read, in one query."""
    sign = -1.0 if study.objective_mode == "max" else 1.0
    n_best = limit // 4 if limit >= 4 else 0
    best_heap: list[tuple[float, int]] = []  # (-badness, -number): the worst kept is on top
    reservoir: list[int] = []
    rng = random.Random(study.id)  # seeded by the study: a reload shows the same sample
    best_so_far: list[BestSoFarPublic] = []
    total = 0
    for number, status, value in repo.iter_trial_values(study.id):
        if value is None or not math.isfinite(value):
            continue
        total += 1
        finished = status in BEST_ELIGIBLE_STATUSES
        if finished and (not best_so_far or sign * value < sign * best_so_far[-1].value):
            best_so_far.append(BestSoFarPublic(number=number, value=value))
        if n_best and finished:
            item = (-sign * value, -number)
            if len(best_heap) < n_best:
                heapq.heappush(best_heap, item)
            elif item > best_heap[0]:
                heapq.heapreplace(best_heap, item)
        if len(reservoir) < limit:
            reservoir.append(number)
        else:
            j = rng.randrange(total)
            if j < limit:
                reservoir[j] = number
    if total <= limit:
        chosen, best_shown = reservoir, total
    else:
        best = {-n for _, n in best_heap}
        rest = [n for n in reservoir if n not in best]
        rng.shuffle(rest)
        chosen, best_shown = [*best, *rest[: limit - len(best)]], len(best)
    names = service.searched_params(study)
    return PointsPublic(
        total=total,
        best_shown=best_shown,
        best_so_far=best_so_far,
        data=[
            PointPublic(
                number=t.number,
                status=t.status,
                value=t.objective_value,
                epochs_run=t.epochs_run,
                config={n: t.config[n] for n in names if n in t.config},
            )
            for t in repo.trials_by_numbers(study.id, chosen)
        ],
    )


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


def warm_up() -> None:
    """Import scikit-learn's forests in a background thread: 2-3 s here that the first
    importance request would otherwise wait for. Started by the app at start-up, so the
    server answers at once and a study page opened later draws its importance plot in
    the time of the fit alone (half a second for 2,000 trials)."""

    def load() -> None:
        import sklearn.ensemble  # noqa: F401

    threading.Thread(target=load, name="hpo-warm-up", daemon=True).start()


def _importance(repo: Repository, study: StudyRecord) -> ImportancePublic:
    method = "random-forest impurity importance"
    names = service.searched_params(study)
    statuses = {
        number: status
        for number, status, value in repo.iter_trial_values(study.id)
        if status in BEST_ELIGIBLE_STATUSES and value is not None and math.isfinite(value)
    }
    eligible = list(statuses)
    if len(eligible) > MAX_TRIALS_FOR_IMPORTANCE:
        eligible = random.Random(0).sample(eligible, MAX_TRIALS_FOR_IMPORTANCE)
    if len(eligible) < MIN_TRIALS_FOR_IMPORTANCE or not names:
        reason = f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials with a value"
        return ImportancePublic(
            method=method,
            n_trials=len(eligible),
            counts=_status_counts(statuses[n] for n in eligible),
            importances={},
            reason=reason,
        )
    # Imported here, not at the top: the CLI and the tests import this module too, and
    # scikit-learn costs seconds of start-up (`warm_up` takes it off the request path).
    from sklearn.ensemble import RandomForestRegressor

    configs: list[dict[str, Any]] = []
    y: list[float] = []
    fitted: list[str] = []
    for _, status, value, config in repo.trial_configs(study.id, eligible):
        if value is not None:  # x and y stay aligned row for row
            configs.append(config)
            y.append(float(value))
            fitted.append(status)
    columns = [_encode([config.get(name) for config in configs]) for name in names]
    x = [list(row) for row in zip(*columns, strict=True)]
    forest = RandomForestRegressor(n_estimators=64, min_samples_leaf=2, random_state=0)
    forest.fit(x, y)
    ranked = sorted(
        zip(names, (float(v) for v in forest.feature_importances_), strict=True),
        key=lambda item: -item[1],
    )
    return ImportancePublic(
        method=method,
        n_trials=len(y),
        counts=_status_counts(fitted),
        importances=dict(ranked),
    )


def _status_counts(statuses: Iterable[str]) -> dict[str, int]:
    """Trials per finished status, both always present: {"completed": 9, "pruned": 2}."""
    counts = dict.fromkeys(BEST_ELIGIBLE_STATUSES, 0)
    for status in statuses:
        counts[status] += 1
    return counts


def _curves(
    repo: Repository,
    study: StudyRecord,
    top: int,
    sample: int,
    metric: str | None,
    numbers: list[int] | None = None,
) -> CurvesPublic:
    metric = metric or study.objective_metric
    if numbers is not None:
        chosen = {t.number: t for t in repo.trials_by_numbers(study.id, numbers)}
    else:
        best = repo.list_trials(study.id, sort="objective_value", limit=max(top, 1))[:top]
        chosen = {t.number: t for t in best}
        running = repo.list_trials(
            study.id, status="running", sort="number", descending=True, limit=MAX_RUNNING_CURVES
        )
        chosen.update({t.number: t for t in running})
        # Trial numbers run 1..last_trial_number, so the sample is drawn from numbers and
        # only the picked trials are read: a 10,000-trial study costs what a 100-trial one
        # does.
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
        value=trial.objective_value,
        steps=[step for step, _ in points],
        values=[value for _, value in points],
    )
