"""TPE sampler: define-by-run conditional params, failures as FAIL, observations as trials."""

from __future__ import annotations

import warnings

from optuna.trial import TrialState

from hpo.space import parse_space

from .common import make

SPACE = parse_space(
    {
        "optimizer": {"choice": ["sgd", "momentum"]},
        "momentum": {"uniform": [0.5, 0.99], "when": {"optimizer": ["momentum"]}},
        "drop": {"uniform": [0.0, 0.5], "step": 0.05},
        "units": {"int": [8, 256], "log": True},
    }
)


def test_conditional_params_suggested_only_when_active() -> None:
    sampler = make("tpe", SPACE)
    for i in range(12):
        config = sampler.ask(f"t{i}")
        assert config is not None
        sampler.tell(f"t{i}", config["drop"])
    for trial in sampler.study.trials:  # type: ignore[attr-defined]
        assert ("momentum" in trial.params) == (trial.params["optimizer"] == "momentum")


def test_direction_failures_and_observations_reach_the_study() -> None:
    sampler = make("tpe", SPACE, mode="max")
    assert sampler.study.direction.name == "MAXIMIZE"  # type: ignore[attr-defined]
    sampler.ask("a")
    sampler.tell("a", float("inf"))
    sampler.observe({"optimizer": "sgd", "drop": 0.25, "units": 32}, 0.7)
    states = [(t.state, t.value) for t in sampler.study.trials]  # type: ignore[attr-defined]
    assert states == [(TrialState.FAIL, None), (TrialState.COMPLETE, 0.7)]


def test_stepped_floats_are_clean() -> None:
    sampler = make("tpe", SPACE)
    for i in range(10):
        config = sampler.ask(f"t{i}")
        assert config is not None
        assert config["drop"] == round(config["drop"], 2)
        sampler.tell(f"t{i}", 1.0)


def test_ranges_not_divisible_by_step_stay_on_the_lattice_without_warnings() -> None:
    space = parse_space(
        {"d": {"uniform": [0.0, 0.52], "step": 0.05}, "n": {"int": [1, 8], "step": 3}}
    )
    sampler = make("tpe", space, n_startup_trials=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(8):
            config = sampler.ask(f"t{i}")
            assert config is not None
            assert all(space[k].contains(v) for k, v in config.items()), config
            sampler.tell(f"t{i}", config["d"] + config["n"])
        sampler.observe({"d": 0.5, "n": 7}, 0.0)
    assert len(sampler.study.trials) == 9  # type: ignore[attr-defined]
