"""auto: the rule that picks gp or tpe, and the switch from gp to tpe mid-study."""

from __future__ import annotations

import pytest

from hpo.samplers import create_sampler
from hpo.samplers.auto import MAX_GP_DIMS, SWITCH_AFTER
from hpo.space import parse_space

from .common import expected_names, run

CONTINUOUS = parse_space(
    {
        "lr": {"loguniform": [1e-4, 1.0]},
        "dropout": {"uniform": [0.0, 0.5]},
        "units": {"int": [8, 512], "log": True},
        "act": {"choice": ["relu", "tanh"]},  # one categorical of four: not "heavy"
        "fixed": {"choice": ["only"]},  # single-valued: does not count
    }
)
CATEGORICAL = parse_space(
    {
        "a": {"choice": [1, 2, 3]},
        "b": {"choice": ["x", "y"]},
        "c": {"grid": [True, False]},
        "lr": {"loguniform": [1e-4, 1.0]},
    }
)
DEEP = parse_space(
    {
        "model": {"choice": ["mlp", "cnn"]},
        "opt": {"choice": ["sgd", "momentum"], "when": {"model": ["mlp"]}},
        "momentum": {"uniform": [0.5, 0.99], "when": {"opt": ["momentum"]}},
        "lr": {"loguniform": [1e-4, 1.0]},
        "wd": {"loguniform": [1e-6, 1e-2]},
    }
)
SHALLOW = parse_space(
    {
        "opt": {"choice": ["sgd", "momentum"]},
        "momentum": {"uniform": [0.5, 0.99], "when": {"opt": ["momentum"]}},
        "lr": {"loguniform": [1e-4, 1.0]},
    }
)
WIDE = parse_space({f"x{i}": {"uniform": [0.0, 1.0]} for i in range(MAX_GP_DIMS + 1)})


@pytest.mark.parametrize(
    ("space", "picked", "why"),
    [
        (CONTINUOUS, "gp", "small continuous"),
        (SHALLOW, "gp", "small continuous"),
        (CATEGORICAL, "tpe", "categorical-heavy (3 of 4"),
        (DEEP, "tpe", "deeply conditional (momentum depends on conditional opt)"),
        (WIDE, "tpe", f"{MAX_GP_DIMS + 1} parameters"),
    ],
)
def test_the_rule_picks_by_the_space(space: dict, picked: str, why: str) -> None:
    sampler = create_sampler("auto", space, mode="min", seed=0)
    assert sampler.picked == picked  # type: ignore[attr-defined]
    assert sampler.reason.startswith(why)  # type: ignore[attr-defined]
    config = sampler.ask("a")
    assert config is not None and set(config) == expected_names(space, config)


def test_a_long_gp_study_continues_with_tpe_which_learns_every_past_trial() -> None:
    space = parse_space({"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}})
    sampler = create_sampler("auto", space, mode="min", seed=0)
    for i in range(SWITCH_AFTER - 1):  # a resume of 199 trials, and one failure
        x = (i + 0.5) / SWITCH_AFTER
        sampler.observe({"x": x, "y": 1 - x}, (x - 0.3) ** 2)
    sampler.observe({"x": 0.5, "y": 0.5}, None, state="failed")
    assert sampler.ask("a") is not None and sampler.picked == "gp"  # type: ignore[attr-defined]
    pending = sampler.ask("b")  # asked by the GP, told after the switch
    sampler.tell("a", 0.5)
    assert sampler.ask("c") is not None and sampler.picked == "tpe"  # type: ignore[attr-defined]
    sampler.tell("b", 0.25)
    assert pending is not None
    trials = sampler._inner.study.trials  # type: ignore[attr-defined]
    # 199 + the failure + "a" learned at the switch, then "c" asked, then "b" (a GP ask).
    assert len(trials) == SWITCH_AFTER + 3
    assert sum(t.state.name == "FAIL" for t in trials) == 1
    assert [t.value for t in trials[-3:]] == [0.5, None, 0.25]


def test_auto_searches_a_categorical_space_without_repeating_a_running_config() -> None:
    sampler = create_sampler("auto", CATEGORICAL, mode="min", seed=0)
    configs = run(sampler, lambda c: c["a"] + (c["lr"] - 0.01) ** 2, 12)
    assert len(configs) == 12
    for config in configs:
        assert set(config) == expected_names(CATEGORICAL, config)
