"""Ray Tune schedulers by the names a user writes: fifo, hyperband, asha, median.

The epoch is the fidelity: every scheduler counts `training_iteration`, which is one
report, which is one epoch of the training core. Each scheduler records which trials it
stopped, so the driver can tell a *pruned* trial (stopped by the scheduler before its
budget) from one that finished on its own (its budget, or its own early stopping).

`hyperband` is Ray's asynchronous Hyperband (ASHA run over every Hyperband bracket, as in
Li et al. 2020), not the synchronous `HyperBandScheduler`: the synchronous one pauses
trials at rung boundaries and resumes them later, which needs every trial to checkpoint
and restore its model; the asynchronous variant never pauses, so a stopped trial is
simply done and a promoted one keeps training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    TrialScheduler,
)

from hpo.spec import StudySpec

TIME_ATTR = "training_iteration"


class _RecordsStops:
    """Mixin: remember every trial the scheduler told to stop, and at which epoch."""

    stopped_at: dict[str, int]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision: str = super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]
        if decision == TrialScheduler.STOP:
            self.stopped_at.setdefault(trial.trial_id, int(result.get(TIME_ATTR, 0)))
        return decision


class Fifo(_RecordsStops, FIFOScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.stopped_at = {}


class Asha(_RecordsStops, AsyncHyperBandScheduler):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped_at = {}


class Median(_RecordsStops, MedianStoppingRule):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped_at = {}


def hyperband_brackets(min_epochs: int, max_epochs: int, eta: float) -> int:
    """Hyperband's s_max + 1: how many brackets fit between min and max epochs."""
    return math.floor(math.log(max_epochs / min_epochs) / math.log(eta) + 1e-9) + 1


def _fifo(spec: StudySpec) -> Fifo:
    return Fifo()


def _asha(spec: StudySpec) -> Asha:
    return Asha(
        time_attr=TIME_ATTR,
        grace_period=spec.budget.min_epochs,
        max_t=spec.budget.max_epochs,
        reduction_factor=spec.strategy.reduction_factor,
        brackets=1,
    )


def _hyperband(spec: StudySpec) -> Asha:
    budget, eta = spec.budget, spec.strategy.reduction_factor
    return Asha(
        time_attr=TIME_ATTR,
        grace_period=budget.min_epochs,
        max_t=budget.max_epochs,
        reduction_factor=eta,
        brackets=hyperband_brackets(budget.min_epochs, budget.max_epochs, eta),
    )


def _median(spec: StudySpec) -> Median:
    return Median(
        time_attr=TIME_ATTR,
        grace_period=spec.budget.min_epochs,
        min_samples_required=3,
    )


SCHEDULERS: dict[str, Callable[[StudySpec], TrialScheduler]] = {
    "fifo": _fifo,
    "hyperband": _hyperband,
    "asha": _asha,
    "median": _median,
}


def create_scheduler(name: str, spec: StudySpec) -> TrialScheduler:
    """The scheduler `name` configured from the spec's budget and strategy."""
    try:
        factory = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler '{name}' (valid: {', '.join(SCHEDULERS)})") from None
    return factory(spec)


def pruned_at(scheduler: TrialScheduler, trial_id: str, max_epochs: int) -> int | None:
    """The epoch at which the scheduler pruned a trial, or None if it was not pruned.

    Schedulers also say STOP to a trial that reached `max_t`; that trial is complete.
    """
    epoch = getattr(scheduler, "stopped_at", {}).get(trial_id)
    return epoch if epoch is not None and epoch < max_epochs else None
