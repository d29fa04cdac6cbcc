"""skopt sampler: distinct points for concurrent trials, exact points told back, mode, dims."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hpo.samplers.skopt import _Codec
from hpo.space import Param, parse_space, sample_value

from .common import make

SPACE = parse_space(
    {
        "x": {"uniform": [-2.0, 2.0]},
        "lr": {"loguniform": [1e-4, 1e-1]},
        "units": {"int": [8, 256], "log": True},
        "layers": {"int": [1, 9], "step": 2},
        "drop": {"uniform": [0.0, 0.5], "step": 0.1},
        "act": {"choice": ["relu", "tanh", 1, True]},
        "fixed": {"int": [3, 3]},
    }
)


def objective(config: dict) -> float:
    return config["x"] ** 2 + abs(math.log10(config["lr"]) + 2) + config["drop"]


def key(config: dict | None) -> tuple:
    assert config is not None
    return tuple(sorted(config.items(), key=lambda kv: kv[0]))


def test_concurrent_asks_distinct_during_the_initial_random_phase() -> None:
    sampler = make("skopt", SPACE, n_initial_points=10)
    pending = [sampler.ask(f"p{i}") for i in range(6)]
    assert len({key(c) for c in pending}) == 6


def test_concurrent_asks_distinct_once_the_model_is_used() -> None:
    sampler = make("skopt", SPACE, n_initial_points=3)
    for i in range(3):
        config = sampler.ask(f"i{i}")
        sampler.tell(f"i{i}", objective(config))  # type: ignore[arg-type]
    assert len(sampler.optimizer.models) == 1  # type: ignore[attr-defined]
    pending = {f"p{i}": sampler.ask(f"p{i}") for i in range(4)}
    assert len({key(c) for c in pending.values()}) == 4
    # Each trial's exact point goes back to skopt, whatever order results arrive in.
    for k in ["p3", "p0", "p2", "p1"]:
        sampler.tell(k, objective(pending[k]))  # type: ignore[arg-type]
    assert len(sampler.optimizer.Xi) == 7  # type: ignore[attr-defined]


def test_values_are_python_scalars_on_the_lattice() -> None:
    sampler = make("skopt", SPACE, n_initial_points=2)
    for i in range(4):
        config = sampler.ask(f"t{i}")
        assert config is not None
        for name, value in config.items():
            assert type(value).__module__ == "builtins", (name, type(value))
            assert SPACE[name].contains(value), (name, value)
        assert config["fixed"] == 3
        sampler.tell(f"t{i}", objective(config))


def test_max_mode_values_are_negated_for_skopt() -> None:
    sampler = make("skopt", SPACE, mode="max")
    config = sampler.ask("a")
    sampler.tell("a", 2.5)
    sampler.observe(config, 4.0)  # type: ignore[arg-type]
    assert sampler.optimizer.yi == [-2.5, -4.0]  # type: ignore[attr-defined]


def test_failed_trial_releases_its_point() -> None:
    sampler = make("skopt", SPACE)
    sampler.ask("a")
    sampler.tell("a", None)
    assert sampler.optimizer.Xi == [] and sampler._pending == {}  # type: ignore[attr-defined]


def test_conditional_params_dropped_but_full_point_told() -> None:
    space = parse_space(
        {
            "optimizer": {"choice": ["sgd", "momentum"]},
            "momentum": {"uniform": [0.5, 0.99], "when": {"optimizer": ["momentum"]}},
        }
    )
    sampler = make("skopt", space, n_initial_points=20)
    seen = set()
    for i in range(12):
        config = sampler.ask(f"t{i}")
        assert config is not None
        assert ("momentum" in config) == (config["optimizer"] == "momentum")
        seen.add(config["optimizer"])
        sampler.tell(f"t{i}", 1.0)
    assert seen == {"sgd", "momentum"}
    assert all(len(x) == 2 for x in sampler.optimizer.Xi)  # type: ignore[attr-defined]
    sampler.observe({"optimizer": "sgd"}, 0.5)  # an inactive param is filled in to tell
    assert len(sampler.optimizer.Xi) == 13  # type: ignore[attr-defined]


def test_a_space_of_single_values_needs_no_optimizer() -> None:
    space = parse_space({"a": {"choice": ["only"]}, "b": {"int": [4, 4]}})
    sampler = make("skopt", space)
    assert sampler.ask("t") == {"a": "only", "b": 4}
    sampler.tell("t", 1.0)


@st.composite
def ranges(draw: st.DrawFn) -> Param:
    kind = draw(st.sampled_from(["uniform", "stepped", "loguniform", "int", "int_step", "log_int"]))
    low = draw(st.integers(-50, 50)) / 4
    width = draw(st.integers(1, 400)) / 4
    if kind == "uniform":
        return Param.model_validate({"uniform": [low, low + width]})
    if kind == "stepped":
        step = draw(st.sampled_from([0.01, 0.05, 0.1, 0.25, 0.3]))
        return Param.model_validate({"uniform": [low, low + max(width, step)], "step": step})
    if kind == "loguniform":
        return Param.model_validate({"loguniform": [abs(low) + 0.01, abs(low) + 0.01 + width]})
    ilow = int(low)
    if kind == "int":
        return Param.model_validate({"int": [ilow, ilow + int(width) + 1]})
    if kind == "int_step":
        step = draw(st.integers(2, 7))
        return Param.model_validate({"int": [ilow, ilow + int(width) + step], "step": step})
    return Param.model_validate({"int": [abs(ilow) + 1, abs(ilow) + 2 + int(width)], "log": True})


@settings(max_examples=100, deadline=None)
@given(param=ranges(), seed=st.integers(0, 2**16))
def test_every_coordinate_maps_to_a_value_and_back(param: Param, seed: int) -> None:
    codec = _Codec(param)
    rng = random.Random(seed)
    for x in codec.dimension.rvs(n_samples=5, random_state=seed):
        value = codec.value(x)
        assert param.contains(value), (x, value)
        assert codec.value(codec.coordinate(value)) == value
    value = sample_value(param, rng)  # what another sampler (or a user) recorded
    assert codec.dimension.low <= codec.coordinate(value) <= codec.dimension.high
    assert codec.value(codec.coordinate(value)) == value
