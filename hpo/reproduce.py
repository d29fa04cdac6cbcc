"""Retrain a stored trial from what the database holds, and the value that trial delivered.

`hpo best --json` prints a `reproduce` command (`hpo train --trial STUDY/NUMBER`) that runs
`reproduce_trial`: the trial's stored config (which carries its seed and the study's data
seed, so the split is the study's), the same number of epochs it ran (a pruned trial is
stopped where the scheduler stopped it; its schedule still spans the full budget), and the
study's definition of a trial's value (`objective.value`: its last epoch, or its best).
On CPU the result equals the stored value to float precision, since seeded CPU runs of
the core are bit-reproducible.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpo.spec import StudySpec
from hpo.storage.repository import Repository

Report = Callable[[Mapping[str, Any]], None]

__all__ = ["Reproduction", "objective_value", "parse_trial_ref", "reproduce_trial"]


class _Enough(Exception):
    """Raised from `report` once the stored trial's epoch count is reached."""


@dataclass
class Reproduction:
    """A retrained trial next to what the database says it delivered."""

    study_id: int
    number: int
    metric: str
    how: str
    stored: float | None
    value: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> float | None:
        if self.stored is None or self.value is None:
            return None
        return abs(self.value - self.stored)


def parse_trial_ref(text: str) -> tuple[int, int]:
    """`STUDY/NUMBER` (e.g. `3/17`) as two positive ints; ValueError says what is wrong."""
    study, sep, number = text.strip().partition("/")
    if not sep or not study.isdigit() or not number.isdigit():
        raise ValueError(f"--trial {text!r}: expected STUDY/NUMBER, e.g. 3/17")
    ids = int(study), int(number)
    if min(ids) < 1:
        raise ValueError(f"--trial {text!r}: study id and trial number start at 1")
    return ids


def objective_value(
    history: Sequence[Mapping[str, Any]], metric: str, mode: str, how: str
) -> float | None:
    """The value a run delivered: its last epoch's `metric` (`how="last"`) or its best
    epoch's (`how="best"`, min or max by `mode`). Non-finite values count as missing; a
    last epoch without a finite value delivers None (a diverged model has no value)."""
    values = [_finite(row.get(metric)) for row in history]
    if how == "last":
        return values[-1] if values else None
    finite = [v for v in values if v is not None]
    if not finite:
        return None
    return min(finite) if mode == "min" else max(finite)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def reproduce_trial(
    repo: Repository, study_id: int, number: int, report: Report | None = None
) -> Reproduction:
    """Retrain trial `number` of study `study_id` as it ran; see the module docstring.

    Raises `NotFoundError` (from the repository) for an unknown study or trial.
    """
    study = repo.get_study(study_id)
    trial = repo.get_trial(study_id, number)
    spec = StudySpec.model_validate(study.spec)
    metric, mode = spec.objective.metric, spec.objective.mode
    how = spec.objective.value
    config = dict(trial.config)
    budget = int(config.get("epochs", spec.budget.max_epochs))
    # A pruned trial is replayed to the epoch the scheduler stopped it at; a completed one
    # runs until the core itself ends it (its budget, or early stopping).
    stop_after = trial.epochs_run if trial.status == "pruned" and trial.epochs_run else budget
    history: list[dict[str, float]] = []

    def collect(metrics: Mapping[str, Any]) -> None:
        row = {k: float(v) for k, v in metrics.items() if _finite(v) is not None}
        history.append(row)
        if report is not None:
            report(metrics)
        if len(history) >= stop_after:
            raise _Enough

    with contextlib.suppress(_Enough):
        _run(spec, config, collect)
    stored = trial.objective_value
    return Reproduction(
        study_id=study_id,
        number=number,
        metric=metric,
        how=how,
        stored=stored,
        value=objective_value(history, metric, mode, how),
        history=history,
        config=config,
    )


def _run(spec: StudySpec, config: dict[str, Any], report: Report) -> None:
    if spec.trainable.function is not None:
        from hpo import references

        references.load(spec.trainable.function)(dict(config), report)
        return
    from hpo.training.loop import train

    train(config, report)
