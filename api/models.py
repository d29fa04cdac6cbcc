"""What the REST API sends and receives, named by the ladder `XCreate` / `XPublic` /
`XsPublic` (a page: ``{data, count}``).

Records from the repository become these models at the route's edge, so the JSON shapes
stay those of `hpo.documents` (what ``hpo … --json`` prints) whether read locally or over
HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hpo import service
from hpo.spec import StudySpec
from hpo.storage.repository import EventRecord, MetricRecord, StudyRecord, TrialRecord

StudyStatusName = Literal["queued", "running", "completed", "failed", "cancelled"]
TrialStatusName = Literal["running", "completed", "pruned", "failed"]


class StudyCreate(StudySpec):
    """A study spec, as in a YAML file under `search_spaces/` (README: The spec).

    The body of ``POST /studies`` is validated by `hpo.spec.load_spec`, the same function
    the CLI uses, so this model only documents the shape in the OpenAPI schema.
    """


class FieldErrorPublic(BaseModel):
    """One problem: `field` is a dotted path into the request (empty when it concerns the
    whole request), `message` says why."""

    field: str
    message: str


class ErrorPublic(BaseModel):
    """Every error response: one or more problems, each with its field path."""

    detail: list[FieldErrorPublic]


class ObjectivePublic(BaseModel):
    """One objective of a study: the metric and whether smaller or larger is better."""

    metric: str
    mode: Literal["min", "max"]


class StrategyPublic(BaseModel):
    sampler: str | None
    scheduler: str | None


class TrialPublic(BaseModel):
    """A trial: config, status, values, final metrics and provenance (as in
    `hpo.documents.trial_document`)."""

    id: int
    number: int
    status: str
    config: dict[str, Any]
    seed: int | None
    epochs_run: int
    attempt: int = Field(1, description="Attempts so far (retries + 1); values are the last's.")
    value: float | None = Field(
        None, description="The trial's one value, what ranks it (see objective.value)."
    )
    values: list[float | None] | None = Field(
        None, description="Its value of each objective, in the spec's order ([value] for one)."
    )
    last_value: float | None
    best_value: float | None
    final_metrics: dict[str, float | None]
    error: str | None
    provenance: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    checkpoints: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="The trial's saved states: 'last' and 'best', each {epoch, bytes} "
        "(absent when it saved none; see GET …/trials/{n}/weights).",
    )

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialPublic:
        return cls(
            id=trial.id,
            number=trial.number,
            status=trial.status,
            config=trial.config,
            seed=trial.seed,
            epochs_run=trial.epochs_run,
            attempt=trial.attempt,
            value=trial.objective_value,
            values=trial.objective_values,
            last_value=trial.last_value,
            best_value=trial.best_value,
            final_metrics=trial.final_metrics,
            error=service.public_error(trial.error),
            provenance=trial.provenance,
            started_at=trial.started_at,
            finished_at=trial.finished_at,
            checkpoints={
                name: {"epoch": int(doc["epoch"]), "bytes": int(doc["bytes"])}
                for name, doc in (("last", trial.last_checkpoint), ("best", trial.best_checkpoint))
                if doc
            },
        )


class BestTrialPublic(TrialPublic):
    """The best trial, its value labelled and the command that retrains it."""

    value_label: str = Field(description='What `value` is, e.g. "val_accuracy, last epoch".')
    test_metrics: dict[str, float] | None = Field(
        None, description="Held-out test split (test_fraction), scored once after the search."
    )
    reproduce: str = Field(description="Retrains this trial from the database (`hpo train`).")


class ParetoTrialPublic(TrialPublic):
    """A trial of the Pareto set with the command that retrains it."""

    reproduce: str = Field(description="Retrains this trial from the database (`hpo train`).")


class ParetoPublic(BaseModel):
    """A study's Pareto set: completed trials that no other completed trial beats on every
    objective (each trial's `values` in the order of `objectives`), by number."""

    study_id: int
    objectives: list[ObjectivePublic]
    params: list[str] = Field(description="The searched hyperparameters.")
    pareto: list[ParetoTrialPublic]


class TrialsPublic(BaseModel):
    """One page of trials; `count` is how many match the filter in all pages."""

    data: list[TrialPublic]
    count: int


class EventPublic(BaseModel):
    """One line of a study's log, as sent in the `data:` field of the events stream."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    study_id: int
    trial_id: int | None
    kind: str
    message: str
    data: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, event: EventRecord) -> EventPublic:
        public = cls.model_validate(event)
        return public.model_copy(update={"message": service.public_error(public.message) or ""})


class MetricPoint(BaseModel):
    """Every metric a trial reported at one step (epoch); None where it was not finite."""

    step: int
    values: dict[str, float | None]


class TrialDetail(TrialPublic):
    """A trial with its whole per-epoch history, oldest step first, and its events
    (started, retried, finished, pruned, failed: the first 100)."""

    history: list[MetricPoint]
    events: list[EventPublic]

    @classmethod
    def with_history(
        cls, trial: TrialRecord, metrics: list[MetricRecord], events: list[EventRecord]
    ) -> TrialDetail:
        steps: dict[int, dict[str, float | None]] = {}
        for m in metrics:  # ordered by step, then name
            steps.setdefault(m.step, {})[m.name] = m.value
        history = [MetricPoint(step=s, values=v) for s, v in steps.items()]
        return cls(
            **TrialPublic.of(trial).model_dump(),
            history=history,
            events=[EventPublic.of(e) for e in events],
        )


class StudyPublic(BaseModel):
    """A study as stored: everything one row holds, no per-trial figures (so a page of
    studies costs one query)."""

    id: int
    name: str
    owner: str | None = Field(
        description="Who submitted it: an identity (token:…, env:HPO_API_TOKEN), never a "
        "display name; null for a study run locally or while authentication was off."
    )
    status: str
    objective: ObjectivePublic
    strategy: StrategyPublic
    trials_target: int | None
    trials_started: int = Field(description="Trials started so far, retries included.")
    best_value: float | None
    best_trial_id: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]

    @classmethod
    def of(cls, study: StudyRecord) -> StudyPublic:
        return cls(**cls._fields(study))

    @staticmethod
    def _fields(study: StudyRecord) -> dict[str, Any]:
        strategy = study.spec.get("strategy", {})
        return {
            "id": study.id,
            "name": study.name,
            "owner": study.owner,
            "status": study.status,
            "objective": ObjectivePublic(
                metric=study.objective_metric,
                mode="max" if study.objective_mode == "max" else "min",
            ),
            "strategy": StrategyPublic(
                sampler=strategy.get("sampler"), scheduler=strategy.get("scheduler")
            ),
            "trials_target": study.n_trials_target,
            "trials_started": study.last_trial_number,
            "best_value": study.best_value,
            "best_trial_id": study.best_trial_id,
            "error": service.public_error(study.error),
            "created_at": study.created_at,
            "started_at": study.started_at,
            "finished_at": study.finished_at,
            "spec": study.spec,
        }


class StudySummary(StudyPublic):
    """A study in a list: with its trial counts per status (one query for the whole page)."""

    trial_counts: dict[str, int]

    @classmethod
    def with_counts(cls, study: StudyRecord, counts: dict[str, int]) -> StudySummary:
        return cls(**cls._fields(study), trial_counts=counts)


class StudyDetail(StudySummary):
    """A study with its trial counts per status and its best trial (two more queries)."""

    best_trial: TrialPublic | None

    @classmethod
    def with_trials(
        cls, study: StudyRecord, counts: dict[str, int], best: TrialRecord | None
    ) -> StudyDetail:
        return cls(
            **cls._fields(study),
            trial_counts=counts,
            best_trial=None if best is None else TrialPublic.of(best),
        )


class StudiesPublic(BaseModel):
    """One page of studies, newest first; `count` is how many match in all pages."""

    data: list[StudySummary]
    count: int


class HealthPublic(BaseModel):
    status: Literal["ok"]
    database: str


_ERROR_DESCRIPTIONS = {
    401: "Authentication is enabled and the bearer token is missing or unknown.",
    404: "No such study or trial, or one this user may not see.",
    409: "The study is in a state that forbids this (finished, or running).",
    413: "The request body is larger than HPO_MAX_BODY_BYTES.",
    415: "The body is neither JSON (application/json) nor YAML (application/yaml).",
    422: "The input is invalid; each problem names its field.",
    429: "The user is at a limit (queued and running studies, or concurrent trials); "
    "retry after the seconds of `Retry-After`.",
    503: "The database is unreachable or failing.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting `codes` as `ErrorPublic` bodies."""
    return {
        code: {"model": ErrorPublic, "description": _ERROR_DESCRIPTIONS[code]} for code in codes
    }
