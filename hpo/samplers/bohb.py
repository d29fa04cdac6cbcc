"""BOHB's sampler: a TPE-style kernel density model per budget (Falkner et al., 2018).

BOHB pairs Hyperband's brackets (the scheduler: `hyperband`, Ray's asynchronous
Hyperband, see `hpo.execution.schedulers`) with a model that proposes where to look. The
model is kept per *budget*, the epoch a value was reported at: a trial that reached epoch
b is one observation at budget b (its objective at that epoch). Proposals come from the
model of the largest budget with enough observations, because values after more epochs
rank configs closer to how they rank after the full budget, yet a model exists from the
first rung on, long before any trial runs its whole budget.

The model at one budget splits that budget's observations into the best
``gamma`` fraction ("good") and the rest ("bad") and fits a product-kernel density to
each: Gaussian kernels (Scott's-rule bandwidths) on the unit interval for ranges (log
scale where the parameter is log), and a kernel that keeps the observed value with
probability 1 - λ for listed values. Candidates are drawn from the good density with
the bandwidths of its ranges widened (`bandwidth_factor`, exploration; listed values
keep their own λ, as in hpbandster: widened threefold, the λ = 1/3 of a good set of two
would reach 1 and redraw every listed parameter, the optimizer among them, uniformly)
and the one with the highest l(x)/g(x) is proposed. A fraction
`random_fraction` of proposals stays uniformly random, so the model can never lock the
search out of a region (BOHB's convergence argument).

A trial's intermediate reports arrive through `report` while it runs (the searcher's
`on_trial_result`), and its whole history again with `tell`; a pruned trial therefore
counts at every budget it reached, and a failed one at none. A value told without a
history (the plain ask/tell API) counts at the full budget, which sorts above every epoch.

Conditional parameters: a candidate's inactive parameters are not drawn, and an
observation lacking a parameter (inactive there) leaves that factor of its kernel out.

Options: ``min_points_in_model`` (default d + 1, d the number of parameters, as in
BOHB's paper and hpbandster: the model acts as soon as a budget has one point more than
the space has dimensions), ``random_fraction`` as an integer percentage (default 33,
hpbandster's 1/3), ``n_candidates`` (default 64).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from hpo.numbers import finite
from hpo.samplers.base import History, Sampler, int_option
from hpo.samplers.base import TrialState as State
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.space import Param, is_active, sample, topological_order

FULL_BUDGET = math.inf
# Fraction of a budget's observations that make the good density, and the smallest
# kernel width: hpbandster's top_n_percent = 15 and min_bandwidth = 1e-3.
GAMMA = 0.15
MIN_BANDWIDTH = 1e-3
BANDWIDTH_FACTOR = 3.0


class BOHBSampler(Sampler):
    """A model per budget over the observations of trials (see the module docstring).

    `model_budget` is the budget the last proposal's model was fitted on, or None when it
    was drawn at random (too few observations anywhere, or the random fraction).
    Reproducible for a fixed `seed` and the same sequence of calls.
    """

    name = "bohb"
    option_names = tuple(SAMPLER_OPTIONS["bohb"])

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
        d = len(self.space)
        self.min_points = int_option(self.name, options, "min_points_in_model", d + 1, low=2)
        percent = int_option(self.name, options, "random_fraction", 33, low=0)
        if percent > 100:
            raise ValueError(
                f"sampler 'bohb': option random_fraction must be a percentage <= 100, got {percent}"
            )
        self.random_fraction = percent / 100
        self.n_candidates = int_option(self.name, options, "n_candidates", 64, low=1)
        self._names = topological_order(self.space)
        self._rng = np.random.default_rng(seed)
        # The space's own sampler draws the random configs, from a stream of this seed.
        self._draws = random.Random(seed)
        # key -> config; key -> {budget: value to minimize}.
        self._configs: dict[str, dict[str, Any]] = {}
        self._values: dict[str, dict[float, float]] = {}
        self._observed = 0
        self.model_budget: float | None = None

    # --- what the sampler learns -------------------------------------------------------

    def report(self, key: str, step: int, value: float | None) -> None:
        """An intermediate value of a running trial: one observation at budget `step`."""
        if key not in self._configs:
            return
        v = finite(value)
        if v is not None:
            self._values[key][float(step)] = self._sign(v)

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: State = "completed",
        history: History = (),
    ) -> None:
        config = self._configs.get(key)
        if config is None:
            return
        self._record(key, config, value, state, history)

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
        self._observed += 1
        key = f"observed-{self._observed}"
        self._record(key, dict(config), value, state, history)

    def _record(
        self, key: str, config: dict[str, Any], value: float | None, state: State, history: History
    ) -> None:
        value = finite(value)
        if state == "failed" or (state == "completed" and value is None):
            self._configs.pop(key, None)
            self._values.pop(key, None)
            return
        # The history told at the end replaces what was reported: a retried trial's
        # history restarts with its last attempt.
        values = {
            float(step): self._sign(v) for step, raw in history if (v := finite(raw)) is not None
        }
        if state == "completed" and value is not None:
            values[FULL_BUDGET] = self._sign(value)
        self._configs[key] = config
        self._values[key] = values

    def _sign(self, value: float) -> float:
        return value if self.mode == "min" else -value

    # --- what it proposes --------------------------------------------------------------

    def observations(self, budget: float) -> int:
        """How many trials have a value at `budget`."""
        return sum(1 for values in self._values.values() if budget in values)

    def largest_budget(self) -> float | None:
        """The largest budget with at least `min_points_in_model` observations, or None."""
        counts: dict[float, int] = {}
        for values in self._values.values():
            for budget in values:
                counts[budget] = counts.get(budget, 0) + 1
        enough = [b for b, n in counts.items() if n >= self.min_points]
        return max(enough) if enough else None

    def ask(self, key: str) -> dict[str, Any] | None:
        budget = self.largest_budget()
        if budget is None or self._rng.random() < self.random_fraction:
            self.model_budget = None
            config = sample(self.space, self._draws)
        else:
            self.model_budget = budget
            config = self._propose(budget)
        self._configs[key] = config
        self._values[key] = {}
        return dict(config)

    def _propose(self, budget: float) -> dict[str, Any]:
        points = [
            (values[budget], self._configs[k])
            for k, values in self._values.items()
            if budget in values
        ]
        points.sort(key=lambda p: p[0])
        n_good = max(1, math.ceil(GAMMA * len(points)))
        good = _Density(self.space, self._names, [c for _, c in points[:n_good]])
        bad = _Density(self.space, self._names, [c for _, c in points[n_good:]])
        best: dict[str, Any] | None = None
        best_score = -math.inf
        for _ in range(self.n_candidates):
            candidate = good.draw(self._rng, self._draws, widen=BANDWIDTH_FACTOR)
            score = good.log_density(candidate) - bad.log_density(candidate)
            if best is None or score > best_score:
                best, best_score = candidate, score
        assert best is not None
        return best


class _Density:
    """A product-kernel density over configs (Parzen estimator), in each parameter's unit
    coordinates. An empty density is uniform (log density 0)."""

    def __init__(
        self, space: Mapping[str, Param], names: list[str], configs: list[dict[str, Any]]
    ) -> None:
        self.space, self.names, self.configs = space, names, configs
        n = max(len(configs), 1)
        self.width: dict[str, float] = {}
        # Each member's unit coordinate per parameter, NaN where it lacks the parameter.
        self.coords: dict[str, np.ndarray] = {}
        for name in names:
            param = space[name]
            column = np.array([_unit(param, c[name]) if name in c else np.nan for c in configs])
            self.coords[name] = column
            present = column[~np.isnan(column)]
            if param.is_categorical:
                # Aitchison-Aitken: keep the value with probability 1 - λ, λ shrinking
                # with more points.
                self.width[name] = min(0.5, max(MIN_BANDWIDTH, 1.0 / (n + 1)))
            elif len(present) > 1:
                # Scott's rule in one dimension.
                self.width[name] = max(MIN_BANDWIDTH, float(np.std(present)) * len(present) ** -0.2)
            else:
                self.width[name] = 0.3

    def draw(
        self, rng: np.random.Generator, draws: random.Random, *, widen: float
    ) -> dict[str, Any]:
        """A config near a random member: each range value perturbed by its kernel widened
        by `widen`, each listed value kept with probability 1 - λ; a parameter the member
        lacks is drawn uniformly."""
        if not self.configs:
            return sample(self.space, draws)
        anchor = self.configs[int(rng.integers(len(self.configs)))]
        config: dict[str, Any] = {}
        for name in self.names:
            param = self.space[name]
            if not is_active(param, config):
                continue
            if name not in anchor:
                config[name] = sample({name: param.model_copy(update={"when": None})}, draws)[name]
                continue
            width = self.width[name]
            if param.is_categorical:
                values = param.values
                keep = rng.random() >= width
                config[name] = (
                    anchor[name]
                    if keep or len(values) == 1
                    else values[int(rng.integers(len(values)))]
                )
                continue
            u = _unit(param, anchor[name])
            for _ in range(20):  # truncated normal by rejection; clip if it keeps missing
                x = u + rng.normal() * width * widen
                if 0.0 <= x <= 1.0:
                    break
            config[name] = _from_unit(param, min(max(x, 0.0), 1.0))
        return config

    def log_density(self, config: Mapping[str, Any]) -> float:
        """Log of the mean kernel over members at `config` (0 for an empty density)."""
        if not self.configs:
            return 0.0
        logs = np.zeros(len(self.configs))
        for name, value in config.items():
            param, width, column = self.space[name], self.width[name], self.coords[name]
            x = _unit(param, value)
            if param.is_categorical:
                k = len(param.values)
                same, other = (1.0 - width, width / (k - 1)) if k > 1 else (1.0, 1.0)
                log_factor = np.log(np.where(column == x, same, other))
            else:
                z = (x - column) / width
                log_factor = -0.5 * z * z - math.log(width * math.sqrt(2 * math.pi))
            # A member without the parameter (inactive there) leaves its factor out.
            logs += np.where(np.isnan(column), 0.0, log_factor)
        top = float(np.max(logs))
        return top + math.log(float(np.mean(np.exp(logs - top))))


def _is_log(param: Param) -> bool:
    return param.kind == "loguniform" or (param.kind == "int" and param.log)


def _unit(param: Param, value: Any) -> float:
    """`value` of `param` in [0, 1]: a listed value's index over the count, a range's
    position (log scale where the parameter is log)."""
    if param.is_categorical:
        values = param.values
        index = next(i for i, v in enumerate(values) if type(v) is type(value) and v == value)
        return index / max(len(values) - 1, 1)
    low, high = param.bounds
    if _is_log(param):
        low, high, value = math.log(low), math.log(high), math.log(value)
    return 0.0 if high == low else (float(value) - low) / (high - low)


def _from_unit(param: Param, u: float) -> Any:
    """The value of a range parameter at unit position `u` (on its step, inside bounds)."""
    low, high = param.bounds
    x = (
        math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        if _is_log(param)
        else (low + u * (high - low))
    )
    if param.kind == "int":
        step = int(param.step or 1)
        k = min(max(round((x - low) / step), 0), (int(high) - int(low)) // step)
        return int(low) + k * step
    if param.step is not None:
        k = round((x - low) / param.step)
        return min(max(float(f"{low + k * param.step:.12g}"), low), high)
    return min(max(x, low), high)
