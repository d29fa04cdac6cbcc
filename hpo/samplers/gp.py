"""gp: Bayesian optimization with hpo's own Gaussian process (`gaussian_process`).

The engine is ours, in torch and scipy (both already dependencies). BoTorch/GPyTorch
(0.18.1 / 1.15.2 on the index) were not adopted: two more dependencies whose torch pins
would have to follow ours, for a model (one Matérn-5/2 ARD GP, log EI, fantasies) that
takes a few hundred lines; their speed was not measured here. The benchmark
(`benchmarks/search_quality.py`, table in the README) decides where this engine stands
against Optuna's `GPSampler`.

How a config becomes model input, per parameter (each feature in [0, 1]):

- `uniform`: linear; `loguniform`: the log of the value; `int`: the integer's cell
  [k - 0.5, k + 0.5] of the range (log-spaced for `log: true`), so rounding a feature
  gives a valid integer; a `step` makes the lattice index the integer.
- `choice` / `grid`: one-hot, one lengthscale per value (never an ordering of values).
- An inactive conditional parameter is pinned to a neutral feature (0.5, or all
  one-hot zeros), so trials that differ only in parameters they did not use are the same
  point to the model: inactive parameters are not modelled.

The first `n_initial_points` configs (default: 2 × dimension + 2, so a 2-D study spends 6
trials before the model acts and a 6-D one 14) come from a scrambled Sobol sequence, which
covers the space better than random draws. The earlier dimension + 1 left the model too
few points to see more than one basin: 10 initial points instead of d + 1 took the
median regret at 50 trials (5 seeds) on Hartmann6 from 0.123 to 0.0024 and on
Rosenbrock-4D from 998 to 495; the price is a worse regret at 25 trials.

Then each ask fits the GP on every finished trial (warm-started from the last fit) and
maximizes log EI with multi-start L-BFGS; trials still running are fantasies (see
`gaussian_process`), so a batch of concurrent asks spreads out instead of piling onto one
point. The GP is fitted to the values after `gaussian_process.warp` (a log of the gap to
the best value, which keeps the minimizers): with it the median regret at 50 trials
(seeds 0-4 of the benchmark) went on Levy-4D from 1.13 to 0.32, on Rosenbrock-4D from
182 to 5.9 and on the mixed space from 2.6e-5 to 1.3e-5, and at 25 trials on Branin from
0.099 to 0.022. L-BFGS also starts from the 3 best observations themselves (Optuna's
`GPSampler` starts from its incumbent): at 50 trials Levy-4D 0.32 to 0.22 and the mixed
space 1.3e-5 to 3.8e-6, Branin 7.1e-5 to 1.0e-4 (5 seeds, so partly noise).

Failures (state ``failed``, or a value that is None, NaN or ±inf) are not modelled as
values, and their configs, like every finished or running config, are never proposed
again. Pruned trials are learned at the value they reached.

`observe` only collects; the fit happens at the next ask, so a resume's past trials cost
one fit. A resumed sampler that was given a fresh seed (`continued_seed`) and already
holds `n_initial_points` observations skips the initial design entirely.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from hpo.numbers import finite
from hpo.samplers.base import History, Sampler, TrialState, clean, int_option
from hpo.samplers.gaussian_process import fit_gp, maximize, warp
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.space import Param, is_active, topological_order

# Fantasy draws per pending batch: enough to average over, cheap with a shared factor.
_FANTASIES = 16
# Sobol candidates scored before L-BFGS, and how many of the best it polishes: 4096 and
# 20 (not 1024 and 10) took Rosenbrock-4D's median regret at 50 trials (5 seeds) from
# 267 to 182; the others stayed within noise.
_RAW_SAMPLES = 4096
_STARTS = 20
# Local candidates around each of the best observations: log EI is often largest near
# the incumbent, where a uniform raw sample rarely lands.
_LOCAL = 64
_LOCAL_TOP = 5
_BEST_STARTS = 3
_NEUTRAL = 0.5


class _Feature:
    """One parameter's map between config values and model features in [0, 1]."""

    def __init__(self, param: Param) -> None:
        self.param = param
        self.width = len(param.values) if param.is_categorical else 1
        self.levels = 0  # lattice size for integers and stepped floats (0: continuous)
        if not param.is_categorical:
            low, high = param.bounds
            if param.kind == "int" and not param.log:
                self.levels = (int(high) - int(low)) // int(param.step or 1) + 1
            elif param.kind == "uniform" and param.step is not None:
                self.levels = math.floor((high - low) / param.step + 1e-9) + 1

    def encode(self, value: Any) -> list[float]:
        param = self.param
        if param.is_categorical:
            return [1.0 if type(v) is type(value) and v == value else 0.0 for v in param.values]
        low, high = param.bounds
        if self.levels:
            k = round((value - low) / (param.step or 1))
            return [(k + 0.5) / self.levels]
        if param.kind == "int":  # log int
            lo, hi = math.log(low - 0.5), math.log(high + 0.5)
            return [(math.log(value) - lo) / (hi - lo)]
        if param.kind == "loguniform":
            return [(math.log(value) - math.log(low)) / (math.log(high) - math.log(low))]
        return [(value - low) / (high - low)]

    def decode(self, u: np.ndarray) -> Any:
        """The value of features `u` (one-hot: the largest one wins)."""
        param = self.param
        if param.is_categorical:
            return param.values[int(np.argmax(u))]
        x = float(min(max(u[0], 0.0), 1.0))
        low, high = param.bounds
        if self.levels:
            k = min(int(x * self.levels), self.levels - 1)
            if param.kind == "int":
                return int(low) + k * int(param.step or 1)
            assert param.step is not None
            return min(clean(low + k * param.step), high)
        if param.kind == "int":
            lo, hi = math.log(low - 0.5), math.log(high + 0.5)
            return int(min(max(round(math.exp(lo + x * (hi - lo))), low), high))
        if param.kind == "loguniform":
            value = math.exp(math.log(low) + x * (math.log(high) - math.log(low)))
        else:
            value = low + x * (high - low)
        return float(min(max(value, low), high))

    def unit(self, u: float) -> list[float]:
        """Features of the value a design coordinate `u` in [0, 1) stands for."""
        if self.param.is_categorical:
            k = min(int(u * self.width), self.width - 1)
            return [1.0 if i == k else 0.0 for i in range(self.width)]
        return [u]

    def neutral(self) -> list[float]:
        return [0.0] * self.width if self.param.is_categorical else [_NEUTRAL]


class GPSampler(Sampler):
    """Gaussian-process Bayesian optimization (module docstring: what and how).

    Minimizes in `mode: min`, maximizes in `mode: max` (values negated inside).
    Option `n_initial_points`: configs from the Sobol design before the model is used.
    `fit_count` counts GP fits (a resume's observations cost one).
    """

    name = "gp"
    option_names = tuple(SAMPLER_OPTIONS["gp"])

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
        self._order = topological_order(self.space)
        self._features = {n: _Feature(p) for n, p in self.space.items()}
        default_init = max(5, 2 * len(self.space) + 2)
        self.n_initial_points = int_option(
            self.name, options, "n_initial_points", default_init, low=1
        )
        self._sign = 1.0 if mode == "min" else -1.0
        self._rng = np.random.default_rng(seed)
        self._sobol = torch.quasirandom.SobolEngine(
            len(self._order), scramble=True, seed=int(self._rng.integers(2**31))
        )
        self._pending: dict[str, dict[str, Any]] = {}
        self._x: list[list[float]] = []
        self._y: list[float] = []
        self._taken: set[tuple[Any, ...]] = set()  # finished, failed and running configs
        self._hyper: np.ndarray | None = None
        self._model: Any = None
        self._fitted_n = 0
        self.fit_count = 0

    # --- ask / tell ----------------------------------------------------------------------

    def ask(self, key: str) -> dict[str, Any] | None:
        if len(self._y) < self.n_initial_points or len(set(self._y)) < 2:
            config = self._design()
        else:
            with _one_thread():
                config = self._suggest()
        self._pending[key] = config
        self._taken.add(_key(config))
        return config

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        config = self._pending.pop(key, None)
        if config is not None:
            self._learn(config, value, state)

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        if self.fits(config):
            self._taken.add(_key(config))
            self._learn(config, value, state)

    @property
    def observations(self) -> list[float]:
        """The finite values learned so far, in the order learned (as told, not negated)."""
        return [self._sign * y for y in self._y]

    def _learn(self, config: Mapping[str, Any], value: float | None, state: TrialState) -> None:
        value = finite(value)
        if state == "failed" or value is None:
            return  # its config stays taken: never proposed again
        self._x.append(self._encode(config))
        self._y.append(self._sign * value)

    # --- encoding ------------------------------------------------------------------------

    def _encode(self, config: Mapping[str, Any]) -> list[float]:
        """Model features of `config`; a parameter missing from it (inactive, or a child
        of a parent just changed) takes its neutral features."""
        row: list[float] = []
        for name in self._order:
            feature = self._features[name]
            row += feature.encode(config[name]) if name in config else feature.neutral()
        return row

    def _decode(self, row: np.ndarray) -> dict[str, Any]:
        config: dict[str, Any] = {}
        start = 0
        for name in self._order:
            feature = self._features[name]
            u = row[start : start + feature.width]
            start += feature.width
            if is_active(self.space[name], config):
                config[name] = feature.decode(u)
        return config

    def _from_unit(self, u: np.ndarray) -> dict[str, Any]:
        row: list[float] = []
        for name, coord in zip(self._order, u, strict=True):
            row += self._features[name].unit(float(coord))
        return self._decode(np.asarray(row))

    # --- proposals -----------------------------------------------------------------------

    def _design(self) -> dict[str, Any]:
        """The next Sobol point not yet taken (a random draw if the lattice repeats)."""
        for _ in range(64):
            config = self._from_unit(self._sobol.draw(1)[0].numpy().astype(float))
            if _key(config) not in self._taken:
                return config
        return self._random_untaken()

    def _random_untaken(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for _ in range(256):
            config = self._from_unit(self._rng.random(len(self._order)))
            if _key(config) not in self._taken:
                return config
        return config  # a space this small is exhausted: repeating is all that is left

    def _fit(self) -> Any:
        if self._model is None or self._fitted_n != len(self._y):
            x, y = np.asarray(self._x), np.asarray(self._y)
            self._model, self._hyper = fit_gp(x, warp(y), warm=self._hyper)
            self._fitted_n = len(self._y)
            self.fit_count += 1
        return self._model

    def _suggest(self) -> dict[str, Any]:
        gp = self._fit()
        pending = torch.tensor(
            [self._encode(c) for c in self._pending.values()], dtype=torch.float64
        ).reshape(-1, gp.x.shape[1])
        acq = gp.acquisition(pending, _FANTASIES, int(self._rng.integers(2**31)))
        raw = self._raw_candidates()
        with torch.no_grad():
            scores = acq(torch.as_tensor(raw)).numpy()
        order = np.argsort(-scores)
        # The best observations start L-BFGS too: the next improvement is often a short
        # step from the incumbent, in a peak of EI narrower than the raw sample's spacing.
        best = np.asarray(self._x)[np.argsort(self._y)[:_BEST_STARTS]]
        starts = np.vstack([raw[order[:_STARTS]], best])
        free = self._free_mask(starts)
        optimized = maximize(acq, starts, free)
        candidates = [self._decode(row) for row in optimized]
        candidates += self._categorical_neighbours(candidates[:3])
        candidates += [self._decode(raw[i]) for i in order[:50]]
        rows = torch.tensor([self._encode(c) for c in candidates], dtype=torch.float64)
        with torch.no_grad():
            final = acq(rows).numpy()
        for i in np.argsort(-final):
            if _key(candidates[i]) not in self._taken:
                return candidates[i]
        return self._random_untaken()

    def _raw_candidates(self) -> np.ndarray:
        """Sobol points over the space, and Gaussian steps around the best observations."""
        sobol = torch.quasirandom.SobolEngine(
            len(self._order), scramble=True, seed=int(self._rng.integers(2**31))
        )
        rows = [self._encode(self._from_unit(u)) for u in sobol.draw(_RAW_SAMPLES).numpy()]
        x = np.asarray(self._x)
        for i in np.argsort(self._y)[:_LOCAL_TOP]:
            movable = self._free_mask(x[i : i + 1])[0]
            for scale in (0.01, 0.05, 0.2):
                steps = self._rng.normal(0.0, scale, (_LOCAL // 3, x.shape[1]))
                near = np.clip(x[i] + steps * movable, 0.0, 1.0)
                rows += [self._encode(self._decode(r)) for r in near]
        return np.asarray(rows, dtype=float)

    def _free_mask(self, rows: np.ndarray) -> np.ndarray:
        """Which features L-BFGS may move in each row: numeric features of parameters
        active in that row's config (one-hots and inactive parameters stay put)."""
        mask = np.zeros_like(rows, dtype=bool)
        for r, row in enumerate(rows):
            config = self._decode(row)
            start = 0
            for name in self._order:
                feature = self._features[name]
                if not self.space[name].is_categorical and name in config:
                    mask[r, start] = True
                start += feature.width
        return mask

    def _categorical_neighbours(self, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each config with one categorical parameter set to each of its other values
        (L-BFGS cannot move one-hot features, so categoricals are searched here)."""
        out = []
        for config in configs:
            for name, value in config.items():
                param = self.space[name]
                if not param.is_categorical:
                    continue
                for other in param.values:
                    if type(other) is type(value) and other == value:
                        continue
                    changed = dict(config)
                    changed[name] = other
                    # Children of a changed parent start neutral; decode drops stale ones.
                    row = np.asarray(self._encode(changed))
                    out.append(self._decode(row))
        return out


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread: the matrices here are small (a few hundred rows), and
    threads only add synchronization, several times the work on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):  # scipy's L-BFGS-B calls BLAS on tiny vectors too
            yield
    finally:
        torch.set_num_threads(before)


def _key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """A hashable identity of a config (types kept: True is not 1)."""
    return tuple(sorted((n, type(v).__name__, v) for n, v in config.items()))
