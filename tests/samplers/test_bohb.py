"""BOHB: a model per budget, proposals from the largest budget with enough observations."""

from __future__ import annotations

import statistics

import pytest

from hpo.samplers import create_sampler
from hpo.samplers.bohb import BOHBSampler
from hpo.space import parse_space
from hpo.spec import load_spec

LINE = parse_space({"x": {"uniform": [0.0, 1.0]}})


def bohb(random_fraction: int = 0, min_points: int = 5, mode: str = "min") -> BOHBSampler:
    sampler = create_sampler(
        "bohb",
        LINE,
        mode=mode,  # type: ignore[arg-type]
        seed=0,
        random_fraction=random_fraction,
        min_points_in_model=min_points,
    )
    assert isinstance(sampler, BOHBSampler)
    return sampler


def grid_x(n: int) -> list[float]:
    return [round(i / (n - 1), 4) for i in range(n)]


def proposals(sampler: BOHBSampler, n: int) -> list[float]:
    return [sampler.ask(f"probe-{i}")["x"] for i in range(n)]  # type: ignore[index]


def test_the_model_comes_from_the_largest_budget_with_enough_observations() -> None:
    sampler = bohb(min_points=5)
    # Budget 1 (first epoch): 20 trials, best near x = 0.1.
    for x in grid_x(20):
        sampler.observe({"x": x}, None, state="pruned", history=[(1, abs(x - 0.1))])
    # Budget 3: only 2 trials so far, and there the best is near x = 0.9.
    for x in (0.85, 0.95):
        sampler.observe({"x": x}, None, state="pruned", history=[(1, 0.5), (3, abs(x - 0.9))])
    low = proposals(sampler, 30)
    assert sampler.model_budget == 1
    assert statistics.median(low) < 0.3

    # Budget 3 gets enough observations: its model (best near 0.9) takes over.
    for x in (0.1, 0.3, 0.5, 0.7, 0.9):
        sampler.observe({"x": x}, None, state="pruned", history=[(1, 0.5), (3, abs(x - 0.9))])
    high = proposals(sampler, 30)
    assert sampler.model_budget == 3
    assert statistics.median(high) > 0.7


def test_a_completed_trial_counts_at_the_full_budget_above_every_epoch() -> None:
    sampler = bohb(min_points=5)
    for x in grid_x(10):
        sampler.observe({"x": x}, None, state="pruned", history=[(1, abs(x - 0.1))])
    # Five trials ran their whole budget (value without a history): best near 0.8.
    for x in (0.2, 0.4, 0.6, 0.8, 1.0):
        sampler.observe({"x": x}, abs(x - 0.8))
    assert statistics.median(proposals(sampler, 30)) > 0.6
    assert sampler.model_budget == float("inf")


def test_max_mode_prefers_large_values() -> None:
    sampler = bohb(mode="max")
    for x in grid_x(20):
        sampler.observe({"x": x}, None, state="pruned", history=[(1, x)])  # larger x better
    assert statistics.median(proposals(sampler, 30)) > 0.8


def test_random_fraction_is_respected() -> None:
    def far_share(percent: int) -> float:
        sampler = bohb(random_fraction=percent)
        for x in grid_x(21):
            sampler.observe({"x": x}, None, state="pruned", history=[(1, abs(x - 0.1))])
        xs = proposals(sampler, 400)
        return sum(x > 0.5 for x in xs) / len(xs)

    # The model keeps proposals near 0.1; uniform draws land above 0.5 half the time, so
    # a random fraction f puts about f/2 of the proposals there.
    assert far_share(0) < 0.02
    assert 0.25 - 0.07 < far_share(50) < 0.25 + 0.07
    assert 0.5 - 0.08 < far_share(100) < 0.5 + 0.08


def test_too_few_observations_anywhere_means_random_proposals() -> None:
    sampler = bohb(min_points=5)
    for x in (0.1, 0.2, 0.3, 0.4):
        sampler.observe({"x": x}, None, state="pruned", history=[(1, x)])
    xs = proposals(sampler, 200)
    assert sampler.model_budget is None
    assert 0.4 < sum(x > 0.5 for x in xs) / len(xs) < 0.6


def test_intermediate_reports_of_running_trials_are_learned() -> None:
    sampler = bohb(min_points=5)
    keys = [f"t{i}" for i in range(12)]
    xs = [sampler.ask(k)["x"] for k in keys]  # type: ignore[index]
    assert sampler.model_budget is None
    for key, x in zip(keys, xs, strict=True):
        sampler.report(key, 1, abs(x - 0.05))  # still running: no tell yet
    assert sampler.largest_budget() == 1
    assert statistics.median(proposals(sampler, 30)) < 0.3


def test_failed_trials_are_forgotten_and_pruned_ones_kept_at_budgets_reached() -> None:
    sampler = bohb(min_points=2)
    a, b, c = sampler.ask("a"), sampler.ask("b"), sampler.ask("c")
    assert a and b and c
    for key in "abc":
        sampler.report(key, 1, 0.5)
    sampler.tell("a", None, state="failed", history=[(1, 0.5)])
    sampler.tell("b", None, state="pruned", history=[(1, 0.4), (2, float("nan"))])
    sampler.tell("c", 0.3, history=[(1, 0.5), (2, 0.3)])
    assert sampler.observations(1) == 2  # b and c; a failed
    assert sampler.observations(2) == 1  # c only: b's epoch 2 was NaN
    assert sampler.observations(float("inf")) == 1
    assert sampler.largest_budget() == 1


def test_conditional_parameters_absent_when_inactive() -> None:
    space = parse_space(
        {
            "opt": {"choice": ["sgd", "momentum"]},
            "momentum": {"uniform": [0.5, 0.99], "when": {"opt": ["momentum"]}},
            "lr": {"loguniform": [1e-4, 1.0]},
            "units": {"int": [8, 256], "log": True},
            "dropout": {"uniform": [0.0, 0.5], "step": 0.1},
        }
    )
    sampler = create_sampler(
        "bohb", space, mode="min", seed=1, random_fraction=0, min_points_in_model=6
    )
    for i in range(30):
        config = sampler.ask(f"w{i}")
        assert config is not None
        sampler.tell(f"w{i}", abs(config["lr"] - 0.01) + (config["opt"] == "sgd"))
    for i in range(30):
        config = sampler.ask(f"p{i}")
        assert config is not None and sampler.fits(config)
        assert ("momentum" in config) == (config["opt"] == "momentum")
        assert config["units"] == int(config["units"]) and 8 <= config["units"] <= 256
        assert round(config["dropout"] * 10, 9) == round(config["dropout"] * 10)


def test_the_searcher_passes_running_trials_reports_on() -> None:
    from hpo.execution.searcher import SamplerSearcher

    spec = load_spec(
        {
            "name": "b",
            "objective": {"metric": "value", "mode": "min"},
            "trainable": {"function": "hpo.examples.functions:branin"},
            "strategy": {"name": "bohb", "options": {"min_points_in_model": 3}},
            "space": {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}},
        }
    )
    sampler = create_sampler("bohb", spec.space, mode="min", seed=0, **spec.strategy.options)
    assert isinstance(sampler, BOHBSampler)
    searcher = SamplerSearcher(sampler, spec)
    for i in range(3):
        assert isinstance(searcher.suggest(f"r{i}"), dict)
        searcher.on_trial_result(f"r{i}", {"epoch": 1, "value": float(i)})
        searcher.on_trial_result(f"r{i}", {"epoch": 2, "value": float(i) / 2})
    assert sampler.observations(1) == 3
    assert sampler.observations(2) == 3
    assert sampler.largest_budget() == 2


def test_bohb_strategy_is_the_bohb_sampler_on_hyperband() -> None:
    spec = load_spec(
        {
            "name": "b",
            "objective": {"metric": "value", "mode": "min"},
            "trainable": {"function": "hpo.examples.functions:branin"},
            "strategy": "bohb",
            "space": {"x1": {"uniform": [-5, 10]}},
        }
    )
    assert (spec.strategy.sampler, spec.strategy.scheduler) == ("bohb", "hyperband")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"random_fraction": 101}, "random_fraction"),
        ({"random_fraction": -1}, "random_fraction"),
        ({"min_points_in_model": 1}, "min_points_in_model"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"bandwidth": 2}, "bandwidth"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options: dict[str, int], field: str) -> None:
    from hpo.errors import SpecError

    with pytest.raises(SpecError) as err:
        load_spec(
            {
                "name": "b",
                "objective": {"metric": "value", "mode": "min"},
                "trainable": {"function": "hpo.examples.functions:branin"},
                "strategy": {"name": "bohb", "options": options},
                "space": {"x1": {"uniform": [-5, 10]}},
            }
        )
    assert f"strategy.options.{field}" in str(err.value)
    with pytest.raises(ValueError, match=field):
        create_sampler("bohb", LINE, mode="min", seed=0, **options)


def test_the_model_acts_from_d_plus_1_observations_by_default() -> None:
    space = parse_space({"a": {"uniform": [0.0, 1.0]}, "b": {"uniform": [0.0, 1.0]}})
    sampler = create_sampler("bohb", space, mode="min", seed=0, random_fraction=0)
    assert isinstance(sampler, BOHBSampler)
    assert sampler.min_points == 3  # d + 1 for d = 2, hpbandster's default
    for i, a in enumerate((0.1, 0.5)):
        sampler.observe({"a": a, "b": 0.5}, None, state="pruned", history=[(1, a)])
        assert sampler.ask(f"early-{i}") is not None and sampler.model_budget is None
    sampler.observe({"a": 0.9, "b": 0.5}, None, state="pruned", history=[(1, 0.9)])
    assert sampler.ask("modelled") is not None and sampler.model_budget == 1


def test_a_listed_value_of_the_good_set_is_kept_with_probability_one_minus_lambda() -> None:
    # One candidate per proposal, so each proposal is one draw from the good density.
    names = ["a", "b", "c", "d", "e", "f", "g"]
    space = parse_space({"opt": {"choice": names}, "x": {"uniform": [0.0, 1.0]}})
    sampler = create_sampler(
        "bohb",
        space,
        mode="min",
        seed=0,
        random_fraction=0,
        n_candidates=1,
        min_points_in_model=8,
    )
    # 8 observations: the best two (ceil(0.15 * 8) = 2, the good set) both use "a".
    for i, opt in enumerate(["a", "a", "b", "c", "d", "e", "f", "g"]):
        sampler.observe({"opt": opt, "x": i / 8}, None, state="pruned", history=[(1, float(i))])
    draws = [sampler.ask(f"p{i}") for i in range(2000)]
    share = sum(c is not None and c["opt"] == "a" for c in draws) / len(draws)
    # λ = 1 / (2 + 1) for two members; kept with 1 - λ, else uniform over the 7 values.
    expected = (1 - 1 / 3) + (1 / 3) / 7
    assert abs(share - expected) < 0.04  # binomial sd 0.01; redrawn uniformly: 1/7
