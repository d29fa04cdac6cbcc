"""What samplers learn from how trials ended: pruned with intermediate values, failed,
retried; and a resumed sampler continuing its sequence instead of replaying it."""

from __future__ import annotations

from optuna.trial import TrialState

from hpo.samplers import create_sampler
from hpo.samplers.base import continued_seed
from hpo.space import parse_space

SPACE = parse_space({"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}})
GRID = parse_space({"a": {"choice": [1, 2, 3]}})


def test_tpe_hears_pruned_trials_as_pruned_with_their_intermediate_values() -> None:
    sampler = create_sampler("tpe", SPACE, mode="min", seed=0)
    sampler.ask("t1")
    sampler.tell("t1", 0.9, state="pruned", history=[(1, 0.95), (2, 0.9)])
    sampler.ask("t2")
    sampler.tell("t2", None, state="failed")
    sampler.ask("t3")
    sampler.tell("t3", 0.5, history=[(1, 0.7), (2, 0.6), (3, 0.5)])
    trials = sampler.study.trials  # type: ignore[attr-defined]
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].intermediate_values == {1: 0.95, 2: 0.9}
    assert trials[2].value == 0.5
    # A pruned trial is never the best: only the one that ran its budget is.
    assert sampler.study.best_trial.number == 2  # type: ignore[attr-defined]


def test_tpe_observe_keeps_the_state_of_past_trials() -> None:
    sampler = create_sampler("tpe", SPACE, mode="min", seed=0)
    sampler.observe({"x": 0.1, "y": 0.2}, 0.3, state="pruned", history=[(1, 0.3)])
    sampler.observe({"x": 0.5, "y": 0.5}, None, state="failed")
    states = [t.state for t in sampler.study.trials]  # type: ignore[attr-defined]
    assert states == [TrialState.PRUNED, TrialState.FAIL]


def test_gp_never_proposes_a_failed_point_again() -> None:
    sampler = create_sampler("gp", SPACE, mode="min", seed=0, n_initial_points=2)
    for i in range(3):
        config = sampler.ask(f"ok{i}")
        assert config is not None
        sampler.tell(f"ok{i}", config["x"] + config["y"])
    asked = []
    for i in range(5):
        config = sampler.ask(f"bad{i}")
        assert config is not None
        asked.append((config["x"], config["y"]))
        sampler.tell(f"bad{i}", None, state="failed")
    assert len(set(asked)) == 5


def test_grid_reruns_a_failed_config_only_while_it_has_attempts_left() -> None:
    sampler = create_sampler("grid", GRID, mode="min", seed=0, max_attempts=2)
    sampler.observe({"a": 1}, 0.5)  # completed: done
    sampler.observe({"a": 2}, None, state="failed", attempts=1)  # one attempt left
    sampler.observe({"a": 3}, None, state="failed", attempts=2)  # none left
    assert sampler.ask("k") == {"a": 2}
    assert sampler.ask("k2") is None and sampler.finished


def test_a_continued_seed_is_fresh_reproducible_and_keeps_a_fresh_study() -> None:
    assert continued_seed(7, 0) == 7
    assert continued_seed(None, 5) is None
    assert continued_seed(7, 5) == continued_seed(7, 5)
    seeds = {continued_seed(7, n) for n in range(1, 200)}
    assert len(seeds) == 199 and 7 not in seeds
    first = create_sampler("random", SPACE, mode="min", seed=7)
    resumed = create_sampler("random", SPACE, mode="min", seed=continued_seed(7, 3))
    before = [first.ask(str(i)) for i in range(6)]
    after = [resumed.ask(str(i)) for i in range(6)]
    assert not {tuple(c.items()) for c in before if c} & {tuple(c.items()) for c in after if c}


def test_gp_fits_a_resumes_past_trials_at_once() -> None:
    sampler = create_sampler("gp", SPACE, mode="min", seed=0, n_initial_points=3)
    for i in range(40):
        x = i / 40
        sampler.observe({"x": x, "y": 1 - x}, (x - 0.3) ** 2)
    assert sampler.fit_count == 0  # type: ignore[attr-defined]
    assert sampler.ask("next") is not None
    assert sampler.fit_count == 1  # type: ignore[attr-defined]
    assert len(sampler.observations) == 40  # type: ignore[attr-defined]


def test_skopt_fits_a_resumes_past_trials_at_once() -> None:
    sampler = create_sampler("skopt", SPACE, mode="min", seed=0, n_initial_points=3)
    opt = sampler._opt  # type: ignore[attr-defined]
    calls: list[int] = []
    tell = opt.tell

    def counting_tell(x: object, y: object, fit: bool = True) -> object:
        calls.append(len(y) if isinstance(y, list) else 1)
        return tell(x, y, fit)

    opt.tell = counting_tell
    for i in range(40):
        x = i / 40
        sampler.observe({"x": x, "y": 1 - x}, (x - 0.3) ** 2)
    assert sampler.ask("next") is not None
    assert calls == [40]
    assert len(opt.yi) == 40
