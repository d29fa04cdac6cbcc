"""The contract every registered sampler keeps (one behaviour, every sampler)."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import pytest

from hpo import spec
from hpo.samplers import SAMPLERS, create_sampler
from hpo.space import parse_space

from .common import MIXED, expected_names, make, mixed_objective, run

LINE = parse_space({"x": {"uniform": [-5.0, 5.0]}})
OPTIMUM = 1.3


def test_registry_names_match_the_spec() -> None:
    assert tuple(SAMPLERS) == spec.SAMPLERS


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="grid, random, tpe, gp, bohb, skopt, auto"):
        create_sampler("hyperopt", MIXED, mode="min", seed=0)


def test_importing_the_registry_loads_neither_optuna_nor_skopt() -> None:
    code = "import sys, hpo.samplers; print(sorted({'optuna', 'skopt'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class TestContract:
    def test_unknown_option_is_named(self, sampler_name: str) -> None:
        with pytest.raises(ValueError, match="n_trees"):
            create_sampler(sampler_name, MIXED, mode="min", seed=0, n_trees=3)

    def test_configs_in_bounds_with_exactly_the_active_params(self, sampler_name: str) -> None:
        configs = run(make(sampler_name), mixed_objective, 8)
        assert len(configs) == 8
        for config in configs:
            assert set(config) == expected_names(MIXED, config)
            for name, value in config.items():
                assert MIXED[name].contains(value), (name, value)
        # The conditions are exercised, not vacuous.
        assert len({c["optimizer"] for c in configs}) > 1 or sampler_name == "grid"

    def test_same_seed_same_sequence(self, sampler_name: str) -> None:
        options = {"shuffle": True} if sampler_name == "grid" else {}
        first = run(make(sampler_name, seed=3, **options), mixed_objective, 6)
        again = run(make(sampler_name, seed=3, **options), mixed_objective, 6)
        assert first == again

    def test_different_seeds_differ(self, sampler_name: str) -> None:
        options = {"shuffle": True} if sampler_name == "grid" else {}
        a = run(make(sampler_name, seed=1, **options), mixed_objective, 3)
        b = run(make(sampler_name, seed=2, **options), mixed_objective, 3)
        assert a != b

    @pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf])
    def test_failed_values_are_not_learned(self, sampler_name: str, bad: float | None) -> None:
        sampler = make(sampler_name)
        configs = run(sampler, lambda _: bad, 8)  # type: ignore[arg-type, return-value]
        assert len(configs) == 8
        for config in configs:
            assert set(config) == expected_names(MIXED, config)
        if sampler_name == "tpe":
            assert all(t.state.name == "FAIL" and t.values is None for t in sampler.study.trials)  # type: ignore[attr-defined]
        if sampler_name == "skopt":
            assert sampler.optimizer.yi == []  # type: ignore[attr-defined]
        if sampler_name == "gp":
            assert sampler.observations == []  # type: ignore[attr-defined]

    def test_only_finite_values_are_learned_among_failures(self, sampler_name: str) -> None:
        sampler = make(sampler_name)
        good = []
        for i in range(6):
            config = sampler.ask(f"t{i}")
            assert config is not None
            if i % 2:
                good.append(mixed_objective(config))
                sampler.tell(f"t{i}", good[-1])
            else:
                sampler.tell(f"t{i}", [math.nan, None, -math.inf][i // 2])
        if sampler_name == "tpe":
            trials = sampler.study.trials  # type: ignore[attr-defined]
            assert [t.value for t in trials if t.state.name == "COMPLETE"] == good
            assert sum(t.state.name == "FAIL" for t in trials) == 3
        if sampler_name == "gp":
            assert sampler.observations == good  # type: ignore[attr-defined]
        if sampler_name == "skopt":
            # A failure is told as the worst value seen so far (none before the first
            # success), so the model steers away from it; a good value as itself.
            yi = sampler.optimizer.yi  # type: ignore[attr-defined]
            g0, g1, g2 = good
            assert yi == [g0, g0, g1, max(g0, g1), g2]
        assert sampler.ask("next") is not None

    def test_concurrent_asks_are_distinct(self, sampler_name: str) -> None:
        sampler = make(sampler_name)
        run(sampler, mixed_objective, 4)  # past the random start of tpe and gp
        pending = [sampler.ask(f"p{i}") for i in range(4)]
        assert all(c is not None for c in pending)
        assert len({tuple(sorted(c.items())) for c in pending if c}) == 4  # type: ignore[union-attr]
        for i in reversed(range(4)):  # results come back in any order
            sampler.tell(f"p{i}", mixed_objective(pending[i]))  # type: ignore[arg-type]
        assert sampler.ask("after") is not None

    def test_unknown_key_is_ignored(self, sampler_name: str) -> None:
        sampler = make(sampler_name)
        sampler.tell("never-asked", 1.0)
        assert sampler.ask("a") is not None

    def test_observe_learns_valid_configs_and_ignores_others(self, sampler_name: str) -> None:
        sampler = make(sampler_name)
        seen = run(make("random", seed=9), mixed_objective, 5)
        for config in seen:
            sampler.observe(config, mixed_objective(config))
        sampler.observe({**seen[0], "lr": 5.0}, 0.0)  # out of bounds
        sampler.observe({**seen[0], "unknown": 1}, 0.0)  # not in the space
        sampler.observe({k: v for k, v in seen[0].items() if k != "lr"}, 0.0)  # lr missing
        sampler.observe(seen[1], math.nan)  # a failure: learned as one, never as a value
        values = [mixed_objective(c) for c in seen]
        if sampler_name == "tpe":
            trials = sampler.study.trials  # type: ignore[attr-defined]
            assert [t.value for t in trials] == [*values, None]
            assert [t.state.name for t in trials] == ["COMPLETE"] * 5 + ["FAIL"]
        if sampler_name == "gp":
            # A failure is remembered (never proposed again), not learned as a value.
            assert sampler.observations == values  # type: ignore[attr-defined]
        if sampler_name == "skopt":
            # The failed point is told as the worst value seen.
            assert sampler.optimizer.yi == [*values, max(values)]  # type: ignore[attr-defined]
        config = sampler.ask("next")
        assert config is not None and set(config) == expected_names(MIXED, config)


def _distances(name: str, mode: str, seed: int, budget: int) -> list[float]:
    """How far from the optimum each proposal past the random start lands."""
    sign = 1.0 if mode == "min" else -1.0
    sampler = make(name, LINE, mode=mode, seed=seed)
    configs = run(sampler, lambda c: sign * (c["x"] - OPTIMUM) ** 2, budget)
    start = {"gp": 3, "tpe": 4}.get(name, 0)
    return [abs(c["x"] - OPTIMUM) for c in configs[start:]]


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize(("name", "budget"), [("tpe", 20), ("gp", 7)])
def test_model_based_samplers_move_toward_the_optimum_in_either_mode(
    name: str, budget: int, mode: str
) -> None:
    # The median over seeds of each run's median distance: random lands 2.5 away on
    # [-5, 5], and a sampler that got the direction wrong drifts to the edges (~5).
    seeds = range(3)
    model = statistics.median(statistics.median(_distances(name, mode, s, budget)) for s in seeds)
    random_ = statistics.median(
        statistics.median(_distances("random", mode, s, budget)) for s in seeds
    )
    assert model < random_
