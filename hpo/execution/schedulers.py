"""Ray Tune schedulers by the names a user writes: fifo, hyperband, asha, median, pbt.

The epoch is the fidelity: every scheduler counts `training_iteration`, which is one
report, which is one epoch of the training core. Each scheduler records which trials it
stopped, so the driver can tell a *pruned* trial (stopped by the scheduler before its
budget) from one that finished on its own (its budget, or its own early stopping).

`hyperband` is Ray's asynchronous Hyperband (ASHA run over every Hyperband bracket, as in
Li et al. 2020), not the synchronous `HyperBandScheduler`: the synchronous one pauses
trials at rung boundaries and resumes them later, which needs every trial to checkpoint
and restore its model; the asynchronous variant never pauses, so a stopped trial is
simply done and a promoted one keeps training.

`pbt` is Ray's `PopulationBasedTraining` (asynchronous): every
``strategy.perturbation_interval`` epochs a trial in the bottom quarter of the population
copies the latest checkpoint of one in the top quarter (exploit) and perturbs that
trial's hyperparameters (explore: ×1.2 or ×0.8, a neighbouring choice, or with
probability ¼ a fresh draw; always clipped into the space's bounds). Every parameter of
the space is mutated (the spec allows no conditions with pbt). Each exploit is
remembered in `perturbations` for the driver's ``perturbed`` events. PBT draws its
initial population itself (Ray refuses a search algorithm beside it): the driver hands
it the sampler's first configs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
    TrialScheduler,
)

from hpo.execution.reports import epoch_of
from hpo.space import Param, sample_value
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
    """Ray's asynchronous successive halving, saying why it stopped each trial it stopped:
    `stop_reasons` maps a Ray trial id to "stopped by ASHA at the rung of epoch 3:
    val_loss 0.81 above the rung's cut-off 0.42 (the best 1/3 of 7 trials there go on)",
    with the cut-off Ray compared against (the rung's other values, before this one)."""

    def __init__(self, *, label: str = "ASHA", seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped_at = {}
        self.stop_reasons: dict[str, str] = {}
        self._label = label
        # Ray draws each new trial's bracket from numpy's global RNG, which nothing seeds:
        # two runs of one spec would prune differently. A seeded stream of our own makes
        # the bracket of the n-th trial a function of the study seed.
        self._bracket_rng = np.random.default_rng(seed)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)  # validates, then draws unseeded
        self._trial_info[trial.trial_id] = self._brackets[self.bracket_index()]

    def bracket_index(self) -> int:
        """The next trial's bracket, drawn as Ray draws it: a softmax over the brackets'
        rung counts, so a bracket with one rung more is e times as likely."""
        sizes = np.array([len(b._rungs) for b in self._brackets], dtype=float)
        weights = np.exp(sizes - sizes.max())
        return int(self._bracket_rng.choice(len(self._brackets), p=weights / weights.sum()))

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        # Read the rung before Ray records this trial's value into it.
        bracket = self._trial_info.get(trial.trial_id)
        rungs = [(m, dict(r)) for m, r in bracket._rungs] if bracket is not None else []
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and trial.trial_id not in self.stop_reasons:
            reason = self._reason(trial.trial_id, rungs, result, bracket)
            if reason is not None:
                self.stop_reasons[trial.trial_id] = reason
        return decision

    def _reason(
        self, trial_id: str, rungs: list[tuple[float, dict[str, float]]], result: Any, bracket: Any
    ) -> str | None:
        epoch = result.get(TIME_ATTR)
        value = result.get(self._metric)
        if bracket is None or epoch is None or value is None:
            return None
        for milestone, recorded in rungs:  # highest rung first, as Ray scans them
            if epoch < milestone or trial_id in recorded:
                continue
            cutoff = bracket.cutoff(recorded)
            if cutoff is None:
                return None
            # Ray compares in "larger is better" units: back to the metric's own.
            cut = float(cutoff) * (self._metric_op or 1.0)
            side = "below" if self._mode == "max" else "above"
            share = f"1/{bracket.rf:g}"
            return (
                f"stopped by {self._label} at the rung of epoch {milestone:g}: "
                f"{self._metric} {float(value):.4g} {side} the rung's cut-off {cut:.4g} "
                f"(the best {share} of the {len(recorded) + 1} trials there go on)"
            )
        return None


class Median(_RecordsStops, MedianStoppingRule):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped_at = {}


class Pbt(_RecordsStops, PopulationBasedTraining):
    """Ray's PBT, remembering each exploit as ``{"trial", "source", "epoch", "from",
    "to"}`` (Ray trial ids; the perturbed parameters before and after) in `perturbations`,
    which the driver's recorder drains."""

    def __init__(self, *, max_epochs: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped_at = {}
        self.perturbations: list[dict[str, Any]] = []
        self._max_epochs = max_epochs

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        # A trial's last epoch leaves nothing to train after an exploit: Ray's PBT would
        # still copy a checkpoint into it (and log a perturbation no epoch ever follows).
        if epoch_of(result) >= self._max_epochs:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
        # Ray's one hook where exploit and explore happen; wrapped, not changed, except
        # that a source at its last epoch is not copied: the trial would jump to the end
        # of the budget and train no further epoch at its new hyperparameters.
        names = list(self._hyperparam_mutations)
        before = {name: trial.config.get(name) for name in names}
        source: dict[str, Any] = self._trial_state[trial_to_clone].last_result or {}
        if epoch_of(source) >= self._max_epochs:
            return
        super()._exploit(tune_controller, trial, trial_to_clone)  # type: ignore[no-untyped-call]
        self.perturbations.append(
            {
                "trial": trial.trial_id,
                "source": trial_to_clone.trial_id,
                "epoch": epoch_of(source),
                "from": before,
                "to": {name: trial.config.get(name) for name in names},
            }
        )


def _clip(param: Param, value: Any) -> Any:
    """`value` moved into `param`'s domain (PBT's ×1.2 may leave it)."""
    if param.is_categorical:
        return value
    low, high = param.bounds
    clipped = min(max(value, low), high)
    return round(clipped) if param.kind == "int" else float(clipped)


def _pbt(spec: StudySpec) -> Pbt:
    rng = random.Random(spec.strategy.seed)
    params = dict(spec.space)
    mutations: dict[str, Any] = {
        name: list(p.values) if p.is_categorical else (lambda p=p: sample_value(p, rng))
        for name, p in params.items()
    }

    def clip(config: dict[str, Any]) -> dict[str, Any]:
        return {**config, **{n: _clip(p, config[n]) for n, p in params.items() if n in config}}

    return Pbt(
        max_epochs=spec.budget.max_epochs,
        time_attr=TIME_ATTR,
        perturbation_interval=spec.strategy.perturbation_interval,
        hyperparam_mutations=mutations,
        custom_explore_fn=clip,
        log_config=False,
    )


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
        seed=spec.strategy.seed,
    )


def _hyperband(spec: StudySpec) -> Asha:
    budget, eta = spec.budget, spec.strategy.reduction_factor
    return Asha(
        label="Hyperband",
        time_attr=TIME_ATTR,
        grace_period=budget.min_epochs,
        max_t=budget.max_epochs,
        reduction_factor=eta,
        brackets=hyperband_brackets(budget.min_epochs, budget.max_epochs, eta),
        seed=spec.strategy.seed,
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
    "pbt": _pbt,
}


def create_scheduler(name: str, spec: StudySpec) -> TrialScheduler:
    """The scheduler `name` configured from the spec's budget and strategy."""
    try:
        factory = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler '{name}' (valid: {', '.join(SCHEDULERS)})") from None
    return factory(spec)


def stop_reason(scheduler: TrialScheduler, trial_id: str) -> str | None:
    """Why the scheduler stopped `trial_id`, in words with its numbers, where it can say."""
    reasons: dict[str, str] = getattr(scheduler, "stop_reasons", {})
    return reasons.get(trial_id)


def pruned_at(scheduler: TrialScheduler, trial_id: str, max_epochs: int) -> int | None:
    """The epoch at which the scheduler pruned a trial, or None if it was not pruned.

    Schedulers also say STOP to a trial that reached `max_t`; that trial is complete.
    """
    epoch = getattr(scheduler, "stopped_at", {}).get(trial_id)
    return epoch if epoch is not None and epoch < max_epochs else None
