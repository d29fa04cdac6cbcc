"""The one adapter that turns any hpo sampler into a Ray Tune `Searcher`.

Samplers speak our small ask/tell interface (`hpo.samplers.base.Sampler`); Ray asks a
`Searcher` for `suggest(trial_id)` and reports `on_trial_complete(trial_id, result, error)`.
The adapter also turns sampled params into the trial's full config (base config from the
spec + params + a per-trial seed + the study's data seed), so every trial's config is
complete and reproducible.

What a sampler learns at the end of a trial: its state (``failed`` on error, ``pruned``
when the scheduler stopped it before its budget, else ``completed``), its value of each
objective (``objective.value``: the last report's, or the best one's; `tell_values`) and
its history of (step, first objective) reports, so TPE hears a pruned trial as PRUNED
with its intermediate values. A retried trial's history restarts with its new attempt.
Each report is also passed on as it arrives (`Sampler.report`, the first objective), so
a sampler that models budgets (BOHB) learns from running trials' intermediate values,
not only from finished ones.

Trials resumed from their checkpoints after a driver died (`resumed`: their full stored
configs, with the keys that tell the trainable where to restore from) are suggested
first, before the sampler is asked for anything; the sampler never proposed them in this
run, so it learns their end through `observe_values`, as it learns from past trials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from hpo.execution.reports import epoch_of, unpack
from hpo.execution.schedulers import pruned_at
from hpo.numbers import finite
from hpo.samplers.base import Sampler, TrialState
from hpo.spec import StudySpec


def trial_seed(study_seed: int | None, index: int) -> int | None:
    """The seed of the `index`-th trial of a study: distinct per trial, fixed by the study seed."""
    if study_seed is None:
        return None
    return (study_seed * 1_000_003 + index) % (2**31 - 1)


class SamplerSearcher(Searcher):
    """Ray `Searcher` over an hpo `Sampler`.

    `first_index` is how many trials the study already has (on resume), so the seeds of
    new trials continue the sequence instead of repeating it. `scheduler` tells a pruned
    trial from one that ran its budget.
    """

    def __init__(
        self,
        sampler: Sampler,
        spec: StudySpec,
        *,
        first_index: int = 0,
        scheduler: TrialScheduler | None = None,
        resumed: list[dict[str, Any]] | None = None,
    ) -> None:
        # Ray's own metric and mode follow the first objective (its reporting only).
        super().__init__(metric=spec.objective.metric, mode=spec.objective.mode)
        self._sampler = sampler
        self._spec = spec
        self._index = first_index
        self._scheduler = scheduler
        # Per trial: (step, one value per objective) of each report, in report order.
        self._history: dict[str, list[tuple[int, tuple[float | None, ...]]]] = {}
        self._resumed = list(resumed or [])
        self._resumed_ids: dict[str, dict[str, Any]] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        # The metric and mode come from the study spec; Ray's param_space is unused.
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        # Ray's own signature omits the `Searcher.FINISHED` string it documents.
        if self._resumed:
            config = self._resumed.pop(0)
            self._resumed_ids[trial_id] = config
            return config
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

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # A FIFO trial's result may carry earlier epochs (`hpo.execution.reports`).
        for epoch in unpack(result):
            self._observe(trial_id, epoch)

    def _observe(self, trial_id: str, result: Mapping[str, Any]) -> None:
        step = epoch_of(result)
        history = self._history.setdefault(trial_id, [])
        if history and step < history[-1][0]:
            history.clear()  # a retried trial starts a new attempt
        if history and step == history[-1][0]:
            history.pop()  # the same report again (Ray's final result)
        values = tuple(finite(result.get(o.metric)) for o in self._spec.objectives)
        history.append((step, values))
        self._sampler.report(trial_id, step, values[0])

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if result and not error:
            # Ray's final result is the last one again, or one it stopped the trial at
            # without passing it to `on_trial_result`: the epochs not heard yet count.
            heard = self._history.get(trial_id)
            last = heard[-1][0] if heard else None
            for epoch in unpack(result):
                if last is None or epoch_of(epoch) >= last:
                    self._observe(trial_id, epoch)
        history = self._history.pop(trial_id, [])
        state: TrialState = "completed"
        if error or not result:
            state = "failed"
        elif (
            self._scheduler is not None
            and pruned_at(self._scheduler, trial_id, self._spec.budget.max_epochs) is not None
        ):
            state = "pruned"
        reports = sorted(history)
        values = [
            objective.value_of([v[i] for _, v in reports])
            for i, objective in enumerate(self._spec.objectives)
        ]
        # The history a sampler learns from is the first objective's (samplers that use
        # one model it alone).
        first = [(step, v[0]) for step, v in history]
        resumed = self._resumed_ids.pop(trial_id, None)
        if resumed is not None:
            params = {name: resumed[name] for name in self._spec.space if name in resumed}
            self._sampler.observe_values(params, values, state=state, history=first)
            return
        self._sampler.tell_values(trial_id, values, state=state, history=first)
