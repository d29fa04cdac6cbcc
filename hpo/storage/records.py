"""The records and vocabularies the repository hands out: frozen dataclasses, never ORM
objects, plus the status names and the small helpers every part of the repository shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, get_args

__all__ = [
    "BEST_ELIGIBLE_STATUSES",
    "FINISHED_STUDY_STATUSES",
    "PARAM_SORT_PREFIX",
    "STUDY_STATUSES",
    "TRIAL_COLUMN_SORTS",
    "TRIAL_STATUSES",
    "BatchItem",
    "EventRecord",
    "KeyedResult",
    "MetricRecord",
    "NewTrial",
    "ObjectiveMode",
    "Perturbed",
    "Restored",
    "ResultRow",
    "Retry",
    "StudyRecord",
    "StudyStatus",
    "TrialEnd",
    "TrialRecord",
    "TrialStatus",
]

StudyStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
TrialStatus = Literal["running", "completed", "pruned", "failed"]
ObjectiveMode = Literal["min", "max"]

STUDY_STATUSES: tuple[str, ...] = get_args(StudyStatus)
TRIAL_STATUSES: tuple[str, ...] = get_args(TrialStatus)
FINISHED_STUDY_STATUSES = frozenset({"completed", "failed", "cancelled"})
# Trials whose best_value may make them the study's best (see the module docstring).
BEST_ELIGIBLE_STATUSES = ("completed", "pruned")
TRIAL_COLUMN_SORTS = frozenset(
    {"number", "objective_value", "best_value", "last_value", "epochs_run", "started_at"}
)
# `sort="param:lr"` orders trials by a hyperparameter of their config.
PARAM_SORT_PREFIX = "param:"


@dataclass(frozen=True)
class StudyRecord:
    """A study as stored. `spec` is the validated spec as a JSON dict."""

    id: int
    name: str
    owner: str | None
    spec: dict[str, Any]
    status: str
    objective_metric: str
    objective_mode: str
    n_trials_target: int | None
    last_trial_number: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    best_trial_id: int | None
    best_value: float | None
    error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    lease_token: int


@dataclass(frozen=True)
class TrialRecord:
    """A trial as stored: `number` counts from 1 within its study. The summary describes
    its current (last) `attempt` only: `epochs_run` is the highest step it reported,
    `final_metrics` the metrics of that step, `last_value` the objective there, and
    `best_value` its best epoch's. `objective_value` is the trial's one value, what ranks
    it: `last_value` for ``objective.value: last``, `best_value` for ``best``."""

    id: int
    study_id: int
    number: int
    ray_trial_id: str | None
    status: str
    config: dict[str, Any]
    seed: int | None
    started_at: datetime
    finished_at: datetime | None
    epochs_run: int
    last_value: float | None
    best_value: float | None
    final_metrics: dict[str, Any]
    error: str | None
    provenance: dict[str, Any]
    objective_value: float | None
    attempt: int
    # ``{"location", "epoch", "bytes"}`` of its latest and best-epoch checkpoints (or None).
    last_checkpoint: dict[str, Any] | None = None
    best_checkpoint: dict[str, Any] | None = None
    # One value per objective (see `objective_value`), None before the first report.
    objective_values: list[float | None] | None = None


@dataclass(frozen=True)
class MetricRecord:
    """One reported value of one attempt of a trial; `value` is None where a non-finite
    number was reported."""

    trial_id: int
    step: int
    name: str
    value: float | None
    attempt: int = 1


@dataclass(frozen=True)
class EventRecord:
    """One line of a study's log; ids increase, so `after_id` pages forward."""

    id: int
    study_id: int
    trial_id: int | None
    kind: str
    message: str
    data: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class ResultRow:
    """One report of a trial: every metric at `step`, and the objective's value (if any)."""

    trial_id: int
    step: int
    metrics: Mapping[str, float]
    objective: float | None


R = TypeVar("R")


def _record(cls: type[R], row: Any) -> R:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _now() -> datetime:
    return datetime.now(UTC)


def _check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


# -- what a driver's writer hands `Repository.write_batch` (trials named by driver key) --


@dataclass(frozen=True)
class NewTrial:
    """A trial the driver started: stored ``running`` with the study's next number."""

    key: str
    config: dict[str, Any]
    seed: int | None
    provenance: dict[str, Any]


@dataclass(frozen=True)
class KeyedResult:
    """One report of trial `key`, with facts to merge into its provenance (if any) and
    the checkpoint saved with it (``{"location", "epoch", "bytes", "best"}``, if any)."""

    key: str
    step: int
    metrics: Mapping[str, float]
    objective: float | None
    provenance: Mapping[str, Any]
    checkpoint: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Restored:
    """Running trial `trial_id` (of an earlier driver) continues as driver key `key`
    from its checkpoint of `epoch`: it is re-owned by this driver and logs ``restored``."""

    key: str
    trial_id: int
    epoch: int
    # Its recorded checkpoint files (the driver's writer deletes them once superseded).
    last_location: str | None = None
    best_location: str | None = None


@dataclass(frozen=True)
class Retry:
    """Ray retries trial `key` after `error`: its next attempt (of `of` in all) begins,
    from the checkpoint of epoch `from_epoch` when it is not None (the earlier attempt's
    reports up to that epoch carry over into the new one)."""

    key: str
    error: str
    of: int
    from_epoch: int | None = None


@dataclass(frozen=True)
class TrialEnd:
    """Trial `key` ended with `status`; `message` is its event's line."""

    key: str
    status: TrialStatus
    error: str | None
    message: str


@dataclass(frozen=True)
class Perturbed:
    """Population-based training copied trial `source_key`'s checkpoint of `epoch` into
    trial `key` and changed its hyperparameters `before` → `after`."""

    key: str
    source_key: str
    epoch: int
    before: Mapping[str, Any]
    after: Mapping[str, Any]


BatchItem = NewTrial | Restored | KeyedResult | Retry | TrialEnd | Perturbed
