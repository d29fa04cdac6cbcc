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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hpo.numbers import finite
from hpo.spec import StudySpec
from hpo.storage.repository import Repository

Report = Callable[[Mapping[str, Any]], None]

__all__ = ["Reproduction", "parse_trial_ref", "reproduce_trial", "test_best"]


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
    # The delivered model's metrics on the held-out test split (`test_fraction` > 0 and
    # the built-in core only): never seen by the search that chose this trial.
    test: dict[str, float] = field(default_factory=dict)

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
    pruned = trial.status == "pruned" and 0 < trial.epochs_run < budget
    history: list[dict[str, float]] = []

    def collect(metrics: Mapping[str, Any]) -> None:
        row = {k: float(v) for k, v in metrics.items() if finite(v) is not None}
        history.append(row)
        if report is not None:
            report(metrics)
        if pruned and len(history) >= trial.epochs_run:
            raise _Enough

    test: dict[str, float] = {}
    with contextlib.suppress(_Enough):
        test = _run(
            spec,
            config,
            collect,
            keep_best=(metric, mode) if how == "best" else None,
            database_url=repo.url,
        )
    stored = trial.objective_value
    return Reproduction(
        study_id=study_id,
        number=number,
        metric=metric,
        how=how,
        stored=stored,
        value=spec.objective.value_of([finite(row.get(metric)) for row in history]),
        history=history,
        config=config,
        test=test,
    )


def _run(
    spec: StudySpec,
    config: dict[str, Any],
    report: Report,
    *,
    keep_best: tuple[str, Literal["min", "max"]] | None,
    database_url: str | None = None,
) -> dict[str, float]:
    """Train as the trial did; the delivered model's test metrics (built-in core only)."""
    if spec.trainable.function is not None:
        from hpo import references

        references.load(spec.trainable.function)(dict(config), report)
        return {}
    from hpo.training.loop import train

    return dict(train(config, report, keep_best=keep_best, database_url=database_url).test)


def test_best(repo: Repository, study_id: int) -> Reproduction | None:
    """Evaluate the study's best trial once on the held-out test split, and store it.

    Runs only when the best trial's config holds out a test split (`test_fraction` > 0):
    the trial is retrained exactly as it ran, and the delivered model's test metrics are
    stored in its provenance under ``test_metrics`` (with an event), labelled as held
    out. Selection never saw them: they are computed after the search has chosen.
    """
    best = repo.best_trial(study_id)
    if best is None or not float(best.config.get("test_fraction", 0) or 0) > 0:
        return None
    done = reproduce_trial(repo, study_id, best.number)
    if done.test:
        repo.add_provenance(best.id, {"test_metrics": done.test})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(done.test.items()))
        repo.add_event(
            study_id,
            "tested",
            f"best trial #{best.number} on the held-out test split "
            f"(never used for selection): {shown}",
            trial_id=best.id,
            data={"number": best.number, **done.test},
        )
    return done
