"""The one adapter that turns any hpo sampler into a Ray Tune `Searcher`.

Samplers speak our small ask/tell interface (`hpo.samplers.base.Sampler`); Ray asks a
`Searcher` for `suggest(trial_id)` and reports `on_trial_complete(trial_id, result, error)`.
The adapter also turns sampled params into the trial's full config (base config from the
spec + params + a per-trial seed), so every trial's config is complete and reproducible.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.search import Searcher

from hpo.samplers.base import Sampler
from hpo.spec import StudySpec


def finite(value: Any) -> float | None:
    """`value` as a float if it is a finite number, else None (failed / not learnable)."""
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float):
        item = getattr(value, "item", None)  # numpy scalars
        if item is None:
            return None
        value = item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
    number = float(value)
    return number if math.isfinite(number) else None


def trial_seed(study_seed: int | None, index: int) -> int | None:
    """The seed of the `index`-th trial of a study: distinct per trial, fixed by the study seed."""
    if study_seed is None:
        return None
    return (study_seed * 1_000_003 + index) % (2**31 - 1)


class SamplerSearcher(Searcher):
    """Ray `Searcher` over an hpo `Sampler`.

    `first_index` is how many trials the study already has (on resume), so the seeds of
    new trials continue the sequence instead of repeating it.
    """

    def __init__(self, sampler: Sampler, spec: StudySpec, *, first_index: int = 0) -> None:
        super().__init__(metric=spec.objective.metric, mode=spec.objective.mode)
        self._sampler = sampler
        self._spec = spec
        self._index = first_index

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        # The metric and mode come from the study spec; Ray's param_space is unused.
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        # Ray's own signature omits the `Searcher.FINISHED` string it documents.
        params = self._sampler.ask(trial_id)
        if params is None:
            return Searcher.FINISHED if self._sampler.finished else None
        seed = trial_seed(self._spec.strategy.seed, self._index)
        self._index += 1
        return self._spec.trial_config(params, seed)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: a resumed study rebuilds its sampler from the database."""

    def restore(self, checkpoint_path: str) -> None:
        """See `save`."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        value = None if error or not result else finite(result.get(self._spec.objective.metric))
        self._sampler.tell(trial_id, value)
