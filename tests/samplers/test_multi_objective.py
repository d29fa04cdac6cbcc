"""NSGA-II and MOTPE behind hpo's ask/tell: several directions, vectors told and observed,
failures as FAIL; single-objective samplers refuse several modes."""

from __future__ import annotations

import math

import optuna
import pytest

from hpo.pareto import dominates
from hpo.samplers import create_sampler
from hpo.space import parse_space

from .common import FAST_OPTIONS, MIXED, expected_names

SPACE = parse_space({"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}})
MODES = ["min", "max"]


def bi_objective(config: dict[str, float]) -> list[float]:
    """A trade-off with a known front: minimize x, maximize x + y (front: y = 1)."""
    return [config["x"], config["x"] + config["y"]]


@pytest.mark.parametrize("name", ["nsga2", "motpe", "mogp"])
def test_vectors_told_are_the_optuna_trials_values(name: str) -> None:
    options = {"n_startup_trials": 4} if name == "mogp" else FAST_OPTIONS[name]
    sampler = create_sampler(name, SPACE, mode=MODES, seed=0, **options)
    assert sampler.multi_objective and sampler.modes == ("min", "max")
    study: optuna.Study = sampler.study  # type: ignore[attr-defined]
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    told = []
    for i in range(8):
        config = sampler.ask(f"t{i}")
        assert config is not None and set(config) == {"x", "y"}
        values = bi_objective(config)
        sampler.tell_values(f"t{i}", values)
        told.append(values)
    assert [t.values for t in study.trials] == told


@pytest.mark.parametrize("name", ["nsga2", "motpe", "mogp"])
def test_any_value_not_finite_is_a_failure(name: str) -> None:
    sampler = create_sampler(name, SPACE, mode=MODES, seed=0, **FAST_OPTIONS[name])
    study: optuna.Study = sampler.study  # type: ignore[attr-defined]
    for i, values in enumerate([[0.5, math.nan], [None, 1.0], [0.1, math.inf], [0.2, 0.3]]):
        sampler.ask(f"t{i}")
        sampler.tell_values(f"t{i}", values)
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "FAIL", "FAIL", "COMPLETE"]
    sampler.ask("p")
    sampler.tell_values("p", [0.2, 0.3], state="pruned")
    assert study.trials[-1].state.name == "PRUNED"
    # A key never asked for is ignored, as for every sampler.
    sampler.tell_values("never", [0.1, 0.2])
    assert len(study.trials) == 5


@pytest.mark.parametrize("name", ["nsga2", "motpe", "mogp"])
def test_a_vector_of_the_wrong_length_is_refused(name: str) -> None:
    sampler = create_sampler(name, SPACE, mode=MODES, seed=0)
    sampler.ask("t")
    with pytest.raises(ValueError, match="1 value"):
        sampler.tell_values("t", [0.5])


@pytest.mark.parametrize("name", ["nsga2", "motpe", "mogp"])
def test_observed_trials_are_learned_as_vectors(name: str) -> None:
    sampler = create_sampler(name, SPACE, mode=MODES, seed=0)
    study: optuna.Study = sampler.study  # type: ignore[attr-defined]
    sampler.observe_values({"x": 0.25, "y": 0.5}, [0.25, 0.75])
    sampler.observe_values({"x": 0.5, "y": 0.5}, [0.5, None])
    sampler.observe_values({"x": 2.0, "y": 0.5}, [2.0, 2.5])  # outside the space: ignored
    assert [(t.state.name, t.values) for t in study.trials] == [
        ("COMPLETE", [0.25, 0.75]),
        ("FAIL", None),
    ]


# (mogp draws conditional parameters with Optuna's random sampler; its GP on this space
# costs minutes, and the define-by-run code is the one shared by all three.)
@pytest.mark.parametrize("name", ["nsga2", "motpe"])
def test_conditional_spaces_get_exactly_the_active_params(name: str) -> None:
    sampler = create_sampler(name, MIXED, mode=MODES, seed=1, **FAST_OPTIONS[name])
    for i in range(12):
        config = sampler.ask(f"t{i}")
        assert config is not None
        assert set(config) == expected_names(MIXED, config)
        assert all(MIXED[n].contains(v) for n, v in config.items())
        sampler.tell_values(f"t{i}", [config["lr"], config["dropout"]])


@pytest.mark.parametrize("name", ["nsga2", "motpe", "mogp"])
def test_one_objective_works_as_well(name: str) -> None:
    sampler = create_sampler(name, SPACE, mode="min", seed=0)
    config = sampler.ask("t")
    assert config is not None
    sampler.tell("t", config["x"])
    assert sampler.study.trials[0].values == [config["x"]]  # type: ignore[attr-defined]


def test_motpe_moves_towards_the_front() -> None:
    """After its random start MOTPE proposes points near the known front (y = 1, so
    objective 2 minus objective 1 is 1 there): the mean y of its last 10 points is above
    0.7, where random draws average 0.5 (sd of a mean of 10: 0.09); measured 0.81 for
    seed 3 and 0.77-0.81 for seeds 4-7, random 0.40-0.68."""
    sampler = create_sampler("motpe", SPACE, mode=MODES, seed=3, n_startup_trials=10)
    points = []
    for i in range(40):
        config = sampler.ask(f"t{i}")
        assert config is not None
        points.append(bi_objective(config))
        sampler.tell_values(f"t{i}", points[-1])
    last = points[-10:]
    assert sum(v[1] - v[0] for v in last) / len(last) > 0.7
    # Few of them are dominated by a point of the random start.
    assert sum(any(dominates(s, p, MODES) for s in points[:10]) for p in last) <= 3


@pytest.mark.slow
def test_mogp_moves_towards_the_front() -> None:
    """The GP's log-EHVI proposals after 5 random trials lie near the known front (y = 1):
    the mean y of its last 5 proposals is above 0.9 (random draws: 0.5; measured 1.0)."""
    sampler = create_sampler("mogp", SPACE, mode=MODES, seed=0, n_startup_trials=5)
    points = []
    for i in range(15):
        config = sampler.ask(f"t{i}")
        assert config is not None
        points.append(bi_objective(config))
        sampler.tell_values(f"t{i}", points[-1])
    assert sum(v[1] - v[0] for v in points[-5:]) / 5 > 0.9


@pytest.mark.parametrize("name", ["tpe", "gp"])
def test_single_objective_samplers_refuse_several_modes(name: str) -> None:
    with pytest.raises(ValueError, match="optimizes one objective"):
        create_sampler(name, SPACE, mode=MODES, seed=0)


@pytest.mark.parametrize("name", ["random", "grid"])
def test_samplers_that_model_no_value_take_vectors(name: str) -> None:
    space = parse_space({"x": {"choice": [1, 2, 3]}})
    sampler = create_sampler(name, space, mode=MODES, seed=0)
    config = sampler.ask("t")
    assert config is not None
    sampler.tell_values("t", [1.0, 2.0])
    with pytest.raises(ValueError, match="1 value"):
        sampler.tell_values("t", [1.0])
