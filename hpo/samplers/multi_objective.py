"""Multi-objective samplers: Optuna's NSGA-II, multi-objective TPE and Gaussian process,
through ask/tell.

Both search for the Pareto front of several objectives at once (one direction each, in
the spec's order) rather than one best trial. They learn a trial's whole vector of values
through `Sampler.tell_values` / `observe_values`; given one objective they behave as
single-objective samplers (NSGA-II as a genetic algorithm, MOTPE as TPE).

Optuna has no intermediate values in a multi-objective study (its pruners are
single-objective), so the history of reports is not learned from; a pruned trial is told
as PRUNED (never part of a front), a failed one, or one with any value None, NaN or ±inf,
as FAIL.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import optuna
from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, TPESampler
from optuna.trial import Trial, TrialState

from hpo.numbers import finite
from hpo.samplers.base import History, Mode, Sampler, int_option
from hpo.samplers.base import TrialState as State
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.samplers.tpe import distribution, suggest_config
from hpo.space import Param, topological_order

_STATES = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


class _OptunaMultiObjective(Sampler):
    """An Optuna sampler on a private in-memory study with one direction per objective.

    Configs are built define-by-run, parents first, so a conditional parameter is
    suggested only when it is active. `study` is the Optuna study, for inspection only.
    """

    multi_objective: ClassVar[bool] = True

    def __init__(
        self,
        space: Mapping[str, Param],
        *,
        mode: Mode | Sequence[Mode],
        seed: int | None,
        max_attempts: int = 1,
        **options: object,
    ) -> None:
        super().__init__(space, mode=mode, seed=seed, max_attempts=max_attempts, **options)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            # Options such as `constant_liar` are marked experimental; the warning says
            # nothing actionable to users.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            engine = self._engine(seed, options)
        self.study = optuna.create_study(
            directions=["minimize" if m == "min" else "maximize" for m in self.modes],
            sampler=engine,
        )
        self._order = topological_order(self.space)
        self._distributions = {name: distribution(p) for name, p in self.space.items()}
        self._pending: dict[str, Trial] = {}

    @abc.abstractmethod
    def _engine(self, seed: int | None, options: Mapping[str, object]) -> BaseSampler:
        """The Optuna sampler behind this one, built from its seed and options."""

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
        self.tell_values(key, [value], state=state, history=history)

    def tell_values(
        self,
        key: str,
        values: Sequence[float | None],
        *,
        state: State = "completed",
        history: History = (),
    ) -> None:
        trial = self._pending.pop(key, None)
        if trial is None:
            return
        vector = self._vector(values, state)
        if vector is None:
            self.study.tell(trial, state=_STATES["failed" if state != "pruned" else "pruned"])
        else:
            self.study.tell(trial, vector)

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: State = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        self.observe_values(config, [value], state=state, history=history, attempts=attempts)

    def observe_values(
        self,
        config: Mapping[str, Any],
        values: Sequence[float | None],
        *,
        state: State = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        if not self.fits(config):
            return
        vector = self._vector(values, state)
        if vector is None and state == "completed":
            state = "failed"
        self.study.add_trial(
            optuna.trial.create_trial(
                params=dict(config),
                distributions={name: self._distributions[name] for name in config},
                values=vector,
                state=_STATES[state],
            )
        )

    def _vector(self, values: Sequence[float | None], state: State) -> list[float] | None:
        """The values as floats when the trial completed with every one finite, else None."""
        if len(values) != len(self.modes):
            raise ValueError(
                f"sampler {self.name!r}: {len(values)} value(s) for {len(self.modes)} objective(s)"
            )
        vector = [finite(v) for v in values]
        if state != "completed" or any(v is None for v in vector):
            return None
        return [float(v) for v in vector if v is not None]


class NSGA2Sampler(_OptunaMultiObjective):
    """Optuna's `NSGAIISampler`: a genetic algorithm ranking by non-domination and crowding.

    Option `population_size` (default 50): configs per generation; the first generation is
    random, so a study of fewer trials than this is a random search.
    """

    name = "nsga2"
    option_names = tuple(SAMPLER_OPTIONS["nsga2"])

    def _engine(self, seed: int | None, options: Mapping[str, object]) -> BaseSampler:
        size = int_option(self.name, options, "population_size", 50, low=2)
        return NSGAIISampler(seed=seed, population_size=size)


class MOTPESampler(_OptunaMultiObjective):
    """Optuna's `TPESampler` on a multi-objective study (MOTPE): good configs are those
    of the best non-dominated ranks; the constant liar keeps concurrent trials apart.

    Option `n_startup_trials` (default 10): random trials before TPE takes over.
    """

    name = "motpe"
    option_names = tuple(SAMPLER_OPTIONS["motpe"])

    def _engine(self, seed: int | None, options: Mapping[str, object]) -> BaseSampler:
        n_startup = int_option(self.name, options, "n_startup_trials", 10, low=0)
        return TPESampler(
            seed=seed,
            multivariate=True,
            group=any(p.when for p in self.space.values()),
            n_startup_trials=n_startup,
            constant_liar=True,
        )


class MOGPSampler(_OptunaMultiObjective):
    """Optuna's `GPSampler` on a multi-objective study: a Gaussian process per objective
    and expected hypervolume improvement (log-EHVI), for small budgets (its cost grows
    cubically with the trials; about 1-2 s per suggestion at 25 trials on 2 busy cores).

    It does not account for trials still running, so concurrent trials may be proposed
    close together; conditional parameters are drawn at random (outside the GP's joint
    space). Option `n_startup_trials` (default 10): random trials before the GP acts.
    """

    name = "mogp"
    option_names = tuple(SAMPLER_OPTIONS["mogp"])

    def _engine(self, seed: int | None, options: Mapping[str, object]) -> BaseSampler:
        n_startup = int_option(self.name, options, "n_startup_trials", 10, low=0)
        return GPSampler(seed=seed, n_startup_trials=n_startup, warn_independent_sampling=False)
