"""TPE: Optuna's Tree-structured Parzen Estimator, driven through Optuna's ask/tell."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import TPESampler as OptunaTPESampler
from optuna.trial import Trial, TrialState

from hpo.numbers import finite
from hpo.samplers.base import History, Sampler, clean, int_option
from hpo.samplers.base import TrialState as State
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.space import Param, is_active, topological_order


def distribution(param: Param) -> BaseDistribution:
    """The Optuna distribution of `param` (a `grid` is a categorical outside the grid sampler).

    A stepped range ends at its last lattice point (low + k*step), as in `hpo.space`, so
    Optuna has nothing to adjust (and warn about) on every suggestion.
    """
    if param.is_categorical:
        return CategoricalDistribution(param.values)
    low, high = param.bounds
    if param.kind == "int":
        step = int(param.step or 1)
        last = int(low) + (int(high) - int(low)) // step * step
        return IntDistribution(int(low), last, log=param.log, step=step)
    if param.kind == "loguniform":
        return FloatDistribution(low, high, log=True)
    if param.step is not None:
        n = math.floor((high - low) / param.step + 1e-9)
        return FloatDistribution(low, min(clean(low + n * param.step), high), step=param.step)
    return FloatDistribution(low, high)


class TPESampler(Sampler):
    """Optuna's `TPESampler` on a private in-memory study.

    Multivariate TPE; with conditional parameters also `group=True`, so each set of
    parameters that appear together is modelled jointly. Configs are built define-by-run,
    parents first, so a conditional parameter is suggested only when it is active.
    Optuna's constant liar keeps concurrent trials apart. `mode` is the study direction.

    A failed trial (None, NaN, ±inf) is told as `TrialState.FAIL`, which TPE never models.
    A pruned trial is told as `TrialState.PRUNED` with its intermediate values (reported
    step by step first), so Optuna's own rules rank it below the trials that ran their
    budget. `observe` adds a past trial the same way (failed ones as FAIL, so their
    params count as tried).

    Option `n_startup_trials` (default 10): random trials before TPE takes over.
    `study` is the Optuna study, for inspection only.
    """

    name = "tpe"
    option_names = tuple(SAMPLER_OPTIONS["tpe"])

    def __init__(
        self,
        space: Mapping[str, Param],
        *,
        mode: Literal["min", "max"],
        seed: int | None,
        max_attempts: int = 1,
        **options: object,
    ) -> None:
        super().__init__(space, mode=mode, seed=seed, max_attempts=max_attempts, **options)
        n_startup = int_option(self.name, options, "n_startup_trials", 10, low=0)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        conditional = any(p.when for p in self.space.values())
        with warnings.catch_warnings():
            # `group` is marked experimental; the warning says nothing actionable to users.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = OptunaTPESampler(
                seed=seed,
                multivariate=True,
                group=conditional,
                n_startup_trials=n_startup,
                constant_liar=True,
            )
        self.study = optuna.create_study(
            direction="minimize" if mode == "min" else "maximize", sampler=sampler
        )
        self._order = topological_order(self.space)
        self._distributions = {name: distribution(p) for name, p in self.space.items()}
        self._pending: dict[str, Trial] = {}

    def ask(self, key: str) -> dict[str, Any] | None:
        trial = self.study.ask()
        self._pending[key] = trial
        return suggest_config(trial, self.space, self._order, self._distributions)

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: State = "completed",
        history: History = (),
    ) -> None:
        trial = self._pending.pop(key, None)
        if trial is None:
            return
        value = finite(value)
        if state == "failed" or (state == "completed" and value is None):
            self.study.tell(trial, state=TrialState.FAIL)
            return
        for step, reported in _intermediate(history).items():
            trial.report(reported, step)
        if state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, value)

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: State = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        if not self.fits(config):
            return
        value = finite(value)
        if state == "completed" and value is None:
            state = "failed"
        self.study.add_trial(
            optuna.trial.create_trial(
                params=dict(config),
                distributions={name: self._distributions[name] for name in config},
                value=value if state == "completed" else None,
                intermediate_values=_intermediate(history) if state != "failed" else None,
                state={
                    "completed": TrialState.COMPLETE,
                    "pruned": TrialState.PRUNED,
                    "failed": TrialState.FAIL,
                }[state],
            )
        )


def _intermediate(history: History) -> dict[int, float]:
    """The finite (step, value) reports of a history, as Optuna's intermediate values."""
    return {int(step): v for step, value in history if (v := finite(value)) is not None}


def suggest_config(
    trial: Trial,
    space: Mapping[str, Param],
    order: Sequence[str],
    distributions: Mapping[str, BaseDistribution],
) -> dict[str, Any]:
    """A config from an asked Optuna `trial`, define-by-run in `order` (parents first), so
    a conditional parameter is suggested only when it is active. Shared by every sampler
    that drives an Optuna study (TPE here, the multi-objective ones)."""
    config: dict[str, Any] = {}
    for name in order:
        if is_active(space[name], config):
            config[name] = _suggest(trial, name, distributions[name])
    return config


def _suggest(trial: Trial, name: str, d: BaseDistribution) -> Any:
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    assert isinstance(d, FloatDistribution)
    value = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    # Optuna's stepped floats carry float noise (0.35000000000000003).
    return min(clean(value), d.high) if d.step is not None else value
