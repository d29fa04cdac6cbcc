"""JSON documents of studies and trials: what `--json` prints and what exports contain.

One shape everywhere a study or trial leaves the library, built from repository records.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from hpo.storage.base import display_url
from hpo.storage.repository import Repository, StudyRecord, TrialRecord


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def trial_document(trial: TrialRecord) -> dict[str, Any]:
    """A trial with its config, status, values, final metrics and provenance."""
    return {
        "id": trial.id,
        "number": trial.number,
        "status": trial.status,
        "config": trial.config,
        "seed": trial.seed,
        "epochs_run": trial.epochs_run,
        "attempt": trial.attempt,
        # The trial's one value (what ranks it, see `objective.value`), then its last and
        # best epochs' values beside it.
        "value": trial.objective_value,
        # Its value of each objective, in the spec's order ([value] for one objective).
        "values": trial.objective_values,
        "last_value": trial.last_value,
        "best_value": trial.best_value,
        "final_metrics": trial.final_metrics,
        "error": trial.error,
        "provenance": trial.provenance,
        "started_at": _iso(trial.started_at),
        "finished_at": _iso(trial.finished_at),
    }


def objective_label(metric: str, how: str) -> str:
    """What a trial's one value is, in words: "val_accuracy, last epoch"."""
    return f"{metric}, {how} epoch"


def spec_objectives(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The objectives of a stored spec, each ``{metric, mode, value}``: one mapping, or a
    list of them in a multi-objective study."""
    objective = spec.get("objective") or {}
    return list(objective) if isinstance(objective, list) else [objective]


def value_label(study: Any) -> str:
    """`objective_label` of a study: a repository record, or a server's study document
    read as one (`objective_metric` and `spec`). For several objectives, the first's."""
    how = spec_objectives(study.spec)[0].get("value", "last")
    return objective_label(study.objective_metric, how)


def reproduce_command(study_id: int, number: int, db: str | None = None) -> str:
    """The command that retrains trial `number` from the database and checks its value.

    `--db` is added for a database other than the default (HPO_DATABASE_URL or
    ./hpo.db), with any password masked: a command printed to a terminal or a log must
    not carry a credential."""
    from hpo.config import get_settings

    command = f"hpo train --trial {study_id}/{number}"
    if not db or db == get_settings().database_url:
        return command
    return f"{command} --db {shlex.quote(display_url(db))}"


def best_document(study: StudyRecord, trial: TrialRecord, db: str | None = None) -> dict[str, Any]:
    """`hpo best --json`: the best trial with its value labelled and its reproduce command."""
    return {
        **trial_document(trial),
        "value_label": value_label(study),
        # On the held-out test split (`test_fraction`), scored once after the search.
        "test_metrics": trial.provenance.get("test_metrics"),
        "reproduce": reproduce_command(study.id, trial.number, db),
    }


def pareto_document(
    study: StudyRecord, trials: list[TrialRecord], db: str | None = None
) -> dict[str, Any]:
    """`hpo best --json` of a multi-objective study: its objectives and its Pareto set
    (completed trials no other beats on every objective), each trial with its `values`
    and reproduce command."""
    return {
        "study_id": study.id,
        "objectives": [
            {"metric": o.get("metric"), "mode": o.get("mode")} for o in spec_objectives(study.spec)
        ],
        # The searched hyperparameters, the columns of the set's table.
        "params": list(study.spec.get("space") or {}),
        "pareto": [
            {**trial_document(t), "reproduce": reproduce_command(study.id, t.number, db)}
            for t in trials
        ],
    }


def study_document(repo: Repository, study: StudyRecord) -> dict[str, Any]:
    """A study with its spec, trial counts and best trial (two queries beyond the study)."""
    best = repo.best_trial(study.id)
    return {
        "id": study.id,
        "name": study.name,
        "owner": study.owner,
        "status": study.status,
        "objective": {"metric": study.objective_metric, "mode": study.objective_mode},
        "strategy": {
            "sampler": study.spec.get("strategy", {}).get("sampler"),
            "scheduler": study.spec.get("strategy", {}).get("scheduler"),
        },
        "trials_target": study.n_trials_target,
        "trial_counts": repo.count_trials(study.id),
        "best_value": study.best_value,
        "best_trial": trial_document(best) if best is not None else None,
        "error": study.error,
        "created_at": _iso(study.created_at),
        "started_at": _iso(study.started_at),
        "finished_at": _iso(study.finished_at),
        "spec": study.spec,
    }
