"""Warm-start points: configs a study evaluates first, in front of any sampler.

`Enqueued` wraps a sampler: its first asks return the points in order (like Optuna's
`enqueue_trial`), then it asks the wrapped sampler. What a point's trial teaches reaches
the wrapped sampler through `observe`, since that sampler never proposed it; a grid thus
counts a point as done. A wrapped sampler's proposal equal to a point already handed out
is skipped (a grid's config that a point covered), so no config runs twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hpo.samplers.base import History, Sampler, TrialState
from hpo.samplers.grid import config_key

# Proposals equal to a point that are skipped in a row before a duplicate is accepted
# (a random or model-based sampler essentially never repeats a config; a grid skips each
# point's config once).
MAX_SKIPS = 10_000


class Enqueued(Sampler):
    """`inner`, after `points` (each a valid config of the space, checked by the spec)."""

    name = "enqueued"
    # A wrapper takes the objectives its inner sampler took (checked when that was built).
    multi_objective = True

    def __init__(self, inner: Sampler, points: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(
            inner.space, mode=inner.modes, seed=inner.seed, max_attempts=inner.max_attempts
        )
        self.inner = inner
        self._queue = [dict(p) for p in points]
        self._given = {config_key(p) for p in self._queue}
        self._points: dict[str, dict[str, Any]] = {}

    def ask(self, key: str) -> dict[str, Any] | None:
        if self._queue:
            point = self._queue.pop(0)
            self._points[key] = point
            return dict(point)
        for _ in range(MAX_SKIPS):
            config = self.inner.ask(key)
            if config is None or config_key(config) not in self._given:
                return config
            # Already run as a point: let the inner sampler drop this proposal.
            self.inner.tell(key, None, state="failed")
        return self.inner.ask(key)

    def report(self, key: str, step: int, value: float | None) -> None:
        if key not in self._points:
            self.inner.report(key, step, value)

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        point = self._points.pop(key, None)
        if point is None:
            self.inner.tell(key, value, state=state, history=history)
        else:
            self.inner.observe(point, value, state=state, history=history)

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        self.inner.observe(config, value, state=state, history=history, attempts=attempts)

    def tell_values(
        self,
        key: str,
        values: Sequence[float | None],
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        # A multi-objective inner sampler learns the whole vector, a point's included.
        point = self._points.pop(key, None)
        if point is None:
            self.inner.tell_values(key, values, state=state, history=history)
        else:
            self.inner.observe_values(point, values, state=state, history=history)

    def observe_values(
        self,
        config: Mapping[str, Any],
        values: Sequence[float | None],
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        self.inner.observe_values(config, values, state=state, history=history, attempts=attempts)

    @property
    def finished(self) -> bool:
        return not self._queue and self.inner.finished
