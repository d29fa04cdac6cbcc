"""skopt: Bayesian optimization with scikit-optimize's Gaussian-process `Optimizer`.

This was hpo's `gp` until the in-house engine (`hpo.samplers.gp`) replaced it; it stays
under the name `skopt` for specs that want scikit-optimize's exact behaviour. The new
`gp` is better on every problem of `benchmarks/search_quality.py`; scikit-optimize is
archived upstream.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

from skopt import Optimizer
from skopt.space import Categorical, Dimension, Integer, Real
from threadpoolctl import threadpool_limits

from hpo.numbers import finite
from hpo.samplers.base import History, Sampler, TrialState, clean, int_option
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.space import Param, is_active, topological_order

Point = list[Any]
# Tries at drawing a point no running trial already has, before giving up on it.
_DISTINCT_TRIES = 10


class _Codec:
    """Maps one parameter to one skopt dimension and back.

    Steps become an integer index (uniform with step: value = low + k*step), so skopt's
    `Integer` keeps every point on the lattice; listed values become the index of the
    value, so skopt never compares `True` with `1` or turns strings into numpy strings.
    """

    def __init__(self, param: Param) -> None:
        self.param = param
        self.stepped = False
        if param.is_categorical:
            self.dimension: Dimension = Categorical(list(range(len(param.values))))
            return
        low, high = param.bounds
        if param.kind == "loguniform":
            self.dimension = Real(low, high, prior="log-uniform")
        elif param.kind == "uniform" and param.step is None:
            self.dimension = Real(low, high)
        elif param.kind == "int" and param.log:
            self.dimension = Integer(int(low), int(high), prior="log-uniform")
        elif param.kind == "int" and param.step in (None, 1):
            self.dimension = Integer(int(low), int(high))
        else:  # a stepped uniform or int
            assert param.step is not None
            self.stepped = True
            n = math.floor((high - low) / param.step + 1e-9)
            self.dimension = Integer(0, n)

    def value(self, x: Any) -> Any:
        """The config value of skopt coordinate `x` (numpy scalars become Python ones)."""
        x = x.item() if hasattr(x, "item") else x
        param = self.param
        if param.is_categorical:
            return param.values[int(x)]
        low, high = param.bounds
        if self.stepped:
            assert param.step is not None
            if param.kind == "int":
                return int(low) + int(x) * int(param.step)
            return min(clean(low + int(x) * param.step), high)
        if param.kind == "int":
            return int(x)
        return float(x)

    def coordinate(self, value: Any) -> Any:
        """The skopt coordinate of config value `value` (which `param.contains`)."""
        param = self.param
        if param.is_categorical:
            return next(
                i for i, v in enumerate(param.values) if type(v) is type(value) and v == value
            )
        low, _ = param.bounds
        if self.stepped:
            assert param.step is not None
            return round((value - low) / param.step)
        return int(value) if param.kind == "int" else float(value)


class SkoptSampler(Sampler):
    """scikit-optimize's `Optimizer(base_estimator="GP", acq_func="gp_hedge")`.

    skopt minimizes, so for `mode: max` values are negated before they are told. The first
    `n_initial_points` configs (option, default 10) are random; then each comes from the GP.

    Concurrency: skopt's `ask()` returns the same point until the next `tell`, so trials
    running at once would all get it. While other trials are pending, `ask` instead fits a
    copy of the optimizer on the observations plus a constant lie (the best value so far,
    skopt's "cl_min") at every pending point and asks that copy, so no two running trials
    get the same point (at the cost of one extra GP fit per such ask). Each trial's exact
    point is kept and told back as asked.

    Conditional parameters: skopt has no conditions, so every parameter is sampled and
    the inactive ones are dropped from the returned config. What is told has each inactive
    coordinate set to one fixed value (the parameter's first value or lower bound), so
    the GP models only the active parameters: points that differ only in parameters a
    trial never used are the same point to it, not noise.

    A failed trial (None, NaN, ±inf, or state ``failed``) is remembered and never proposed
    again; once the GP has observations it is also told as the worst value seen, so the
    model steers away from it. A pruned trial is told its one value. `observe` does the
    same for trials of an earlier run; configs outside the space are skipped.
    Fitting: `observe` only queues, and the next `ask` or `tell` fits everything queued
    in one skopt call, so a resume's past trials cost one GP fit, not one each. Fits still
    run on the caller's thread (Ray's event loop, through the searcher).
    `optimizer` is the skopt `Optimizer` (None when every parameter is single-valued), for
    inspection only.
    """

    name = "skopt"
    option_names = tuple(SAMPLER_OPTIONS["skopt"])

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
        self.n_initial_points = int_option(self.name, options, "n_initial_points", 10, low=1)
        self._order = topological_order(self.space)
        # Single-valued params are filled in directly; skopt refuses empty ranges.
        self._fixed = {n: v for n, p in self.space.items() if (v := _only_value(p)) is not _MANY}
        self._codecs = {n: _Codec(p) for n, p in self.space.items() if n not in self._fixed}
        self._names = list(self._codecs)
        self._sign = 1.0 if mode == "min" else -1.0
        self._pending: dict[str, Point] = {}
        self._failed: list[Point] = []
        self._opt: Optimizer | None = self._new_optimizer(seed) if self._names else None
        # Observations not yet fitted: `observe` (a resume's past trials) only collects,
        # and the next `tell`, `ask` or look at `optimizer` fits them all at once.
        self._unfit: list[tuple[Point, float]] = []

    @property
    def optimizer(self) -> Optimizer | None:
        """The skopt `Optimizer` with every observation fitted (None when every
        parameter is single-valued), for inspection."""
        self._fit_deferred()
        return self._opt

    def ask(self, key: str) -> dict[str, Any] | None:
        if self.optimizer is None:  # every parameter is single-valued
            return self._config([])
        point = self._ask_point()
        self._pending[key] = point
        return self._config(point)

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        point = self._pending.pop(key, None)
        if point is None or self._opt is None:
            return
        self._learn(self._canonical(point, self._config(point)), value, state)
        self._fit_deferred()

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        if self._opt is None or not self.fits(config):
            return
        point = [
            self._codecs[name].coordinate(config[name]) if name in config else None
            for name in self._names
        ]
        self._learn(self._canonical(point, config), value, state)

    def _learn(self, point: Point, value: float | None, state: TrialState) -> None:
        """Queue one observation (fitted by `_fit_deferred`)."""
        assert self._opt is not None
        value = finite(value)
        if state == "failed" or value is None:
            self._failed.append(point)
            seen = list(self._opt.yi) + [y for _, y in self._unfit]
            if not seen:
                return
            # The worst value seen so far: the model learns to look elsewhere.
            told = max(seen)
        else:
            told = self._sign * value
        self._unfit.append((point, told))

    def _fit_deferred(self) -> None:
        """Tell skopt every queued observation in one call: one GP fit, however many
        (a resume's 40 past trials cost one fit, not 40)."""
        if not self._unfit or self._opt is None:
            return
        points, values = [p for p, _ in self._unfit], [y for _, y in self._unfit]
        self._unfit = []
        with threadpool_limits(1, user_api="blas"):
            self._opt.tell(points, values)

    def _canonical(self, point: Point, config: Mapping[str, Any]) -> Point:
        """`point` with each parameter inactive under `config` at its fixed stand-in."""
        return [
            x
            if name in config
            else self._codecs[name].dimension.bounds[0]
            if not isinstance(self._codecs[name].dimension, Categorical)
            else self._codecs[name].dimension.categories[0]
            for name, x in zip(self._names, point, strict=True)
        ]

    def _new_optimizer(self, seed: int | None) -> Optimizer:
        return Optimizer(
            [self._codecs[n].dimension for n in self._names],
            base_estimator="GP",
            n_initial_points=self.n_initial_points,
            acq_func="gp_hedge",
            random_state=seed,
            # skopt keeps every fitted model by default; only the latest one is ever used.
            model_queue_size=1,
        )

    def _ask_point(self) -> Point:
        assert self.optimizer is not None
        pending = list(self._pending.values())
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            # skopt warns when its model proposes a seen point; it then draws a random one.
            warnings.simplefilter("ignore", UserWarning)
            if not pending or len(self.optimizer.yi) < self.n_initial_points:
                # Nothing running, or still in the initial phase, whose points are fresh
                # random draws anyway: skopt's own next point.
                point = self.optimizer.ask()
            else:
                point = self._ask_with_lies(pending)
            taken = pending + self._failed
            for _ in range(_DISTINCT_TRIES):
                if point not in taken and self._canonical(point, self._config(point)) not in taken:
                    break
                # Small discrete spaces can repeat a running point; take another draw.
                point = self.optimizer.space.rvs(random_state=self.optimizer.rng)[0]
        return point

    def _ask_with_lies(self, pending: list[Point]) -> Point:
        """The next point of an optimizer that believes every pending point scored the best
        value so far, so it looks elsewhere (a constant liar, as in skopt's `ask(n_points)`)."""
        assert self.optimizer is not None
        lie = min(self.optimizer.yi)
        # Seeded from the main optimizer's generator: reproducible given the call order.
        liar = self._new_optimizer(int(self.optimizer.rng.randint(0, 2**31 - 1)))
        liar.tell(list(self.optimizer.Xi) + pending, list(self.optimizer.yi) + [lie] * len(pending))
        point: Point = liar.ask()
        return point

    def _config(self, point: Point) -> dict[str, Any]:
        full = dict(self._fixed)
        full.update(
            (name, self._codecs[name].value(x)) for name, x in zip(self._names, point, strict=True)
        )
        config: dict[str, Any] = {}
        for name in self._order:
            if is_active(self.space[name], config):
                config[name] = full[name]
        return config


_MANY = object()


def _only_value(param: Param) -> Any:
    """The one value `param` takes, or `_MANY`."""
    if param.is_categorical:
        return param.values[0] if len(param.values) == 1 else _MANY
    low, high = param.bounds
    return int(low) if param.kind == "int" and low == high else _MANY
