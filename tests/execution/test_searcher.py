"""The searcher tells samplers how trials ended: pruned (from the scheduler's record)
with their intermediate values, failed, or completed with their one objective value."""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState

from hpo.execution.schedulers import create_scheduler
from hpo.execution.searcher import SamplerSearcher
from hpo.samplers import create_sampler
from hpo.spec import Objective, load_spec
from tests.execution.conftest import branin_spec


def _searcher(value: str = "last", seed: int = 3) -> tuple[SamplerSearcher, Any, Any]:
    spec = load_spec(
        branin_spec(
            objective={"metric": "value", "mode": "min", "value": value},
            strategy={"sampler": "tpe", "scheduler": "asha", "seed": seed},
            budget={"trials": 5, "max_epochs": 9, "min_epochs": 1},
        )
    )
    scheduler = create_scheduler("asha", spec)
    sampler = create_sampler("tpe", spec.space, mode="min", seed=seed)
    return SamplerSearcher(sampler, spec, scheduler=scheduler), sampler, scheduler


def test_a_pruned_trial_reaches_tpe_as_pruned_with_its_intermediate_values() -> None:
    searcher, sampler, scheduler = _searcher()
    config = searcher.suggest("t1")
    assert isinstance(config, dict) and config["data_seed"] == 3
    for epoch, value in [(1, 5.0), (2, 4.0), (3, 4.5)]:
        searcher.on_trial_result("t1", {"epoch": epoch, "value": value})
    scheduler.stopped_at["t1"] = 3  # the scheduler stopped it at epoch 3 of 9
    searcher.on_trial_complete("t1", {"epoch": 3, "value": 4.5})
    (trial,) = sampler.study.trials
    assert trial.state == TrialState.PRUNED
    assert trial.intermediate_values == {1: 5.0, 2: 4.0, 3: 4.5}


def test_a_failed_trial_reaches_tpe_as_failed() -> None:
    searcher, sampler, _ = _searcher()
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"epoch": 1, "value": 5.0})
    searcher.on_trial_complete("t1", None, error=True)
    assert [t.state for t in sampler.study.trials] == [TrialState.FAIL]


def test_a_completed_trial_is_told_its_one_value() -> None:
    for kind, expected in [("last", 3.0), ("best", 2.0)]:
        searcher, sampler, _ = _searcher(kind)
        searcher.suggest("t1")
        for epoch, value in [(1, 4.0), (2, 2.0), (3, 3.0)]:
            searcher.on_trial_result("t1", {"epoch": epoch, "value": value})
        searcher.on_trial_complete("t1", {"epoch": 3, "value": 3.0})
        (trial,) = sampler.study.trials
        assert (trial.state, trial.value) == (TrialState.COMPLETE, expected)


def test_a_retried_trials_history_is_its_last_attempts() -> None:
    searcher, sampler, _ = _searcher("best")
    searcher.suggest("t1")
    for epoch, value in [(1, 1.0), (2, 0.5), (1, 7.0), (2, 6.0)]:  # attempt 2 from epoch 1
        searcher.on_trial_result("t1", {"epoch": epoch, "value": value})
    searcher.on_trial_complete("t1", {"epoch": 2, "value": 6.0})
    (trial,) = sampler.study.trials
    assert trial.value == 6.0 and trial.intermediate_values == {1: 7.0, 2: 6.0}


def test_one_value() -> None:
    def value(how: str, mode: str, values: list[float | None]) -> float | None:
        return Objective(metric="m", mode=mode, value=how).value_of(values)  # type: ignore[arg-type]

    assert value("last", "min", [3.0, None, 2.5]) == 2.5
    assert value("best", "max", [3.0, None, 2.5]) == 3.0
    assert value("best", "min", [3.0, None, 2.5]) == 2.5
    assert value("last", "min", [1.0, None]) is None  # the delivered model diverged
    assert value("best", "min", []) is None
