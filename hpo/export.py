"""Exports of a study: CSV, JSON, and an Optuna study that optuna-dashboard opens.

Every export streams trials and metrics from the database in batches, so exporting a
10,000-trial study holds one batch in memory, not the study.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from itertools import groupby
from typing import IO, Any

from hpo.documents import spec_objectives, trial_document
from hpo.space import Param
from hpo.spec import load_spec
from hpo.storage.repository import MetricRecord, Repository, StudyRecord, TrialRecord


def _trials_with_metrics(
    repo: Repository, study: StudyRecord
) -> Iterator[tuple[TrialRecord, list[MetricRecord]]]:
    """Each trial with its metric rows, merging two ordered streams (two cursors total)."""
    metrics = groupby(repo.iter_study_metrics(study.id), key=lambda m: m.trial_id)
    pending: tuple[int, list[MetricRecord]] | None = None
    for trial in repo.iter_trials(study.id):
        rows: list[MetricRecord] = []
        while True:
            if pending is None:
                nxt = next(metrics, None)
                if nxt is None:
                    break
                pending = (nxt[0], list(nxt[1]))
            if pending[0] == trial.id:
                rows, pending = pending[1], None
                break
            if pending[0] > trial.id:
                break
            pending = None  # metrics of a trial not listed (cannot happen with FK cascade)
        yield trial, rows


_TRIAL_COLUMNS = ("number", "status", "epochs_run", "value", "best_value", "last_value")


def to_csv(repo: Repository, study: StudyRecord, stream: IO[str]) -> None:
    """One row per trial: number, status, epochs, values, every param and final metric.

    A hyperparameter and a metric of the same name (``lr`` is both, with a schedule) get
    the columns ``param.lr`` and ``metric.lr``; a name taken by a trial column is
    prefixed the same way. Other names are written as they are.
    """
    spec = study.spec
    params = list(spec.get("space", {}))
    objectives = spec_objectives(spec)
    # A multi-objective study adds one column per objective: ``value.<metric>``.
    value_columns = [f"value.{o['metric']}" for o in objectives] if len(objectives) > 1 else []
    writer: Any = None
    for trial in repo.iter_trials(study.id):
        if writer is None:
            metric_names = sorted(trial.final_metrics)
            taken = set(_TRIAL_COLUMNS) | set(value_columns)
            param_columns = {
                p: f"param.{p}" if p in taken or p in metric_names else p for p in params
            }
            taken |= set(params)
            metric_columns = {m: f"metric.{m}" if m in taken else m for m in metric_names}
            header = [
                *_TRIAL_COLUMNS,
                *value_columns,
                *param_columns.values(),
                *metric_columns.values(),
            ]
            writer = csv.DictWriter(stream, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
        writer.writerow(
            {
                "number": trial.number,
                "status": trial.status,
                "epochs_run": trial.epochs_run,
                "value": trial.objective_value,
                "best_value": trial.best_value,
                "last_value": trial.last_value,
                **dict(zip(value_columns, trial.objective_values or [], strict=False)),
                **{column: trial.config.get(p) for p, column in param_columns.items()},
                **{
                    metric_columns[m]: v
                    for m, v in trial.final_metrics.items()
                    if m in metric_columns
                },
            }
        )
    if writer is None:
        csv.writer(stream).writerow([*_TRIAL_COLUMNS, *value_columns, *params])


def to_json(repo: Repository, study: StudyRecord, stream: IO[str]) -> None:
    """A JSON object: the study, then `trials` written one by one with their histories."""
    head = {"id": study.id, "name": study.name, "status": study.status, "spec": study.spec}
    stream.write(json.dumps(head)[:-1] + ', "trials": [')
    for i, (trial, rows) in enumerate(_trials_with_metrics(repo, study)):
        doc = trial_document(trial)
        history: dict[int, dict[str, float | None]] = {}
        for m in rows:
            history.setdefault(m.step, {"step": m.step})[m.name] = m.value
        doc["history"] = [history[s] for s in sorted(history)]
        stream.write(("," if i else "") + "\n" + json.dumps(doc, default=str))
    stream.write("\n]}\n")


# --- Optuna -------------------------------------------------------------------------------


def _distribution(param: Param) -> Any:
    import optuna.distributions as d

    if param.is_categorical:
        return d.CategoricalDistribution(param.values)
    low, high = param.bounds
    if param.kind == "int":
        return d.IntDistribution(int(low), int(high), log=param.log, step=int(param.step or 1))
    if param.kind == "loguniform":
        return d.FloatDistribution(low, high, log=True)
    if param.step is not None:
        # Optuna requires (high - low) to be a multiple of step; our grid stops at the
        # last step below high, so the same set of values is expressed exactly.
        n = math.floor((high - low) / param.step + 1e-9)
        return d.FloatDistribution(low, float(f"{low + n * param.step:.12g}"), step=param.step)
    return d.FloatDistribution(low, high)


_STATES = {"completed": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL", "running": "FAIL"}


def to_optuna(repo: Repository, study: StudyRecord, storage: str, name: str | None = None) -> str:
    """Write `study` as an Optuna study at `storage` and return its name.

    Params carry their distributions, each epoch's objective is an intermediate value,
    the final objective is the trial's value, states map completed→COMPLETE,
    pruned→PRUNED, failed→FAIL; `optuna.load_study` and optuna-dashboard open it.
    A multi-objective study becomes one with a direction per objective and each trial's
    `values` (Optuna keeps no intermediate values there).
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(study.spec)
    name = name or f"hpo-{study.id}-{study.name}"
    several = spec.multi_objective
    target = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=["maximize" if o.mode == "max" else "minimize" for o in spec.objectives],
    )
    target.set_user_attr("hpo_study_id", study.id)
    distributions = {n: _distribution(p) for n, p in spec.space.items()}
    metric = study.objective_metric
    batch = []
    for trial, rows in _trials_with_metrics(repo, study):
        params = {n: trial.config[n] for n in spec.space if n in trial.config}
        intermediate = {
            m.step: m.value
            for m in rows
            if not several and m.name == metric and m.value is not None and math.isfinite(m.value)
        }
        state = TrialState[_STATES[trial.status]]
        # The trial's value of each objective (objective.value), what hpo ranks by.
        values = (
            ((trial.objective_values or []) if several else [trial.objective_value])
            if state in (TrialState.COMPLETE, TrialState.PRUNED)
            else []
        )
        if state == TrialState.COMPLETE and (
            len(values) != len(spec.objectives) or any(v is None for v in values)
        ):
            state = TrialState.FAIL
        batch.append(
            create_trial(
                params=params,
                distributions={n: distributions[n] for n in params},
                values=[float(v) for v in values if v is not None]
                if state == TrialState.COMPLETE
                else None,
                intermediate_values=intermediate,
                state=state,
                user_attrs={"hpo_number": trial.number, "epochs_run": trial.epochs_run},
            )
        )
        if len(batch) >= 500:
            target.add_trials(batch)
            batch = []
    if batch:
        target.add_trials(batch)
    return name
