"""Schedulers built from a spec: the seeded bracket draws of asha and hyperband."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hpo.execution.schedulers import Asha, create_scheduler
from hpo.spec import load_spec
from tests.execution.conftest import branin_spec


@dataclass
class _Trial:
    """What Ray's asynchronous Hyperband reads of a trial when it is added: its id."""

    trial_id: str


def _hyperband(seed: int) -> Asha:
    spec = load_spec(
        branin_spec(
            strategy={"sampler": "random", "scheduler": "hyperband", "seed": seed},
            budget={"max_epochs": 27, "min_epochs": 1},
        )
    )
    scheduler = create_scheduler("hyperband", spec)
    assert isinstance(scheduler, Asha)
    scheduler.set_search_properties("value", "min")
    return scheduler


def _brackets(scheduler: Asha, n: int) -> list[int]:
    """The bracket index (by its rung count) the scheduler gives each of `n` new trials."""
    rungs = []
    for i in range(n):
        trial = _Trial(f"t{i}")
        scheduler.on_trial_add(None, trial)
        rungs.append(len(scheduler._trial_info[trial.trial_id]._rungs))
    return rungs


def test_the_same_seed_puts_the_same_trials_in_the_same_brackets() -> None:
    first, again = _brackets(_hyperband(7), 60), _brackets(_hyperband(7), 60)
    other = _brackets(_hyperband(8), 60)
    assert first == again
    assert first != other
    assert set(first) == {1, 2, 3, 4}  # 27 epochs from 1 at eta 3: brackets of 4..1 rungs


def test_brackets_are_drawn_with_ray_s_softmax_over_rung_counts() -> None:
    scheduler = _hyperband(0)
    n = 20_000
    counts = [0, 0, 0, 0, 0]
    for _ in range(n):
        counts[len(scheduler._brackets[scheduler.bracket_index()]._rungs)] += 1
    total = sum(math.exp(-k) for k in range(4))
    for rungs in (4, 3, 2, 1):
        expected = math.exp(rungs - 4) / total  # 0.644, 0.237, 0.087, 0.032
        assert abs(counts[rungs] / n - expected) < 0.015
