"""Grid sampler: the exact, condition-aware product, each config once, resumable."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from hpo.samplers.base import Sampler
from hpo.space import parse_space

from .common import MIXED, make

PLAIN = parse_space(
    {
        "lr": {"grid": [0.001, 0.01, 0.1]},
        "batch": {"choice": [32, 64]},
        "hidden": {"int": [16, 64], "grid_points": 3},
        "bn": {"grid": [True, False]},
    }
)
# The SGD-momentum vs Adam case: momentum multiplies only its own branch.
OPTIMIZERS = parse_space(
    {
        "optimizer": {"choice": ["sgd", "momentum", "adam"]},
        "momentum": {"grid": [0.5, 0.9, 0.99], "when": {"optimizer": ["momentum"]}},
    }
)


def drain(sampler: Sampler, value: float | None = 1.0) -> list[dict[str, Any]]:
    configs = []
    while (config := sampler.ask(f"t{len(configs)}")) is not None:
        configs.append(config)
        sampler.tell(f"t{len(configs) - 1}", value)
    return configs


def as_set(configs: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(sorted((k, type(v).__name__, v) for k, v in c.items())) for c in configs}


def test_plain_space_is_the_exact_product_each_once_then_finished() -> None:
    sampler = make("grid", PLAIN)
    assert not sampler.finished
    configs = drain(sampler)
    product = [
        {"lr": lr, "batch": b, "hidden": h, "bn": bn}
        for lr, b, h, bn in itertools.product(
            [0.001, 0.01, 0.1], [32, 64], [16, 40, 64], [True, False]
        )
    ]
    assert len(configs) == len(product) == 36
    assert as_set(configs) == as_set(product)
    assert sampler.finished
    assert sampler.ask("more") is None


def test_conditional_param_multiplies_only_its_branch() -> None:
    configs = drain(make("grid", OPTIMIZERS))
    assert configs == [
        {"optimizer": "sgd"},
        {"optimizer": "momentum", "momentum": 0.5},
        {"optimizer": "momentum", "momentum": 0.9},
        {"optimizer": "momentum", "momentum": 0.99},
        {"optimizer": "adam"},
    ]


def test_mixed_space_count_follows_the_conditions() -> None:
    # Branches: sgd 1, momentum 3 values, adam 2 values; times 3*3*3*3*2 shared values.
    configs = drain(make("grid", MIXED))
    assert len(configs) == len(as_set(configs)) == (1 + 3 + 2) * 3 * 3 * 3 * 3 * 2


@pytest.mark.parametrize("failure", [None, float("nan")])
def test_failed_configs_are_counted_done_not_reproposed(failure: float | None) -> None:
    sampler = make("grid", OPTIMIZERS)
    configs = drain(sampler, failure)
    assert len(configs) == 5 and sampler.finished


def test_configs_asked_but_never_told_are_not_reproposed() -> None:
    sampler = make("grid", OPTIMIZERS)
    asked = [sampler.ask(f"t{i}") for i in range(5)]
    assert sampler.ask("extra") is None and sampler.finished
    assert len(as_set(asked)) == 5  # type: ignore[arg-type]


def test_observe_skips_done_configs_on_resume() -> None:
    before = make("grid", PLAIN)
    done = [before.ask(f"t{i}") for i in range(10)]
    resumed = make("grid", PLAIN)
    for config in done[::2] + done[1::2]:  # order does not matter
        resumed.observe(config, 1.0)  # type: ignore[arg-type]
    resumed.observe({"lr": 0.5, "batch": 32, "hidden": 16, "bn": True}, 1.0)  # not in the grid
    rest = drain(resumed)
    assert len(rest) == 26
    assert as_set(rest).isdisjoint(as_set(done))  # type: ignore[arg-type]
    assert as_set(rest) | as_set(done) == as_set(drain(make("grid", PLAIN)))  # type: ignore[arg-type]


def test_observing_everything_finishes_before_any_ask() -> None:
    sampler = make("grid", OPTIMIZERS)
    for config in drain(make("grid", OPTIMIZERS)):
        sampler.observe(config, None)
    assert sampler.finished and sampler.ask("t") is None


def test_shuffle_is_seeded_and_keeps_the_same_configs() -> None:
    plain = drain(make("grid", PLAIN))
    shuffled = drain(make("grid", PLAIN, seed=5, shuffle=True))
    assert shuffled == drain(make("grid", PLAIN, seed=5, shuffle=True))
    assert shuffled != plain and as_set(shuffled) == as_set(plain)


def test_bool_and_int_values_stay_apart() -> None:
    space = parse_space({"flag": {"grid": [1, True, 0, False]}})
    configs = drain(make("grid", space))
    assert [(type(c["flag"]), c["flag"]) for c in configs] == [
        (int, 1),
        (bool, True),
        (int, 0),
        (bool, False),
    ]


def test_a_range_without_grid_points_is_refused() -> None:
    with pytest.raises(ValueError, match="grid_points"):
        make("grid", parse_space({"lr": {"loguniform": [1e-4, 1e-1]}}))


def test_shuffle_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="shuffle"):
        make("grid", PLAIN, shuffle="yes")
