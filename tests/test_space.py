"""Search spaces: sampling stays in bounds, conditions hold, grids are exact, dump round-trips."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hpo.space import (
    Param,
    check_space,
    dump_space,
    expand_grid,
    grid_size,
    grid_values,
    is_active,
    parse_space,
    sample,
    sample_value,
    topological_order,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def params(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["uniform", "loguniform", "int", "choice", "grid"]))
    if kind == "uniform":
        low = draw(finite)
        width = draw(st.floats(min_value=1e-3, max_value=1e6))
        out: dict[str, Any] = {"uniform": [low, low + width]}
        if draw(st.booleans()):
            out["step"] = width / draw(st.integers(1, 50))
        elif draw(st.booleans()):
            out["grid_points"] = draw(st.integers(2, 6))
        return out
    if kind == "loguniform":
        low = draw(st.floats(min_value=1e-8, max_value=1e3))
        return {"loguniform": [low, low * draw(st.floats(min_value=1.01, max_value=1e4))]}
    if kind == "int":
        log = draw(st.booleans())
        low = draw(st.integers(1 if log else -1000, 1000))
        out = {"int": [low, low + draw(st.integers(0, 5000))]}
        if log:
            out["log"] = True
        elif draw(st.booleans()):
            out["step"] = draw(st.integers(1, 7))
        return out
    values = draw(
        st.lists(
            st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c", "d"]), st.booleans()),
            min_size=1,
            max_size=5,
            unique_by=lambda v: (type(v).__name__, v),
        )
    )
    return {kind: values}


@st.composite
def spaces(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    raw = {f"p{i}": draw(params()) for i in range(n)}
    # Conditions only on earlier categorical params: never a cycle by construction.
    for i in range(1, n):
        parents = [
            f"p{j}" for j in range(i) if ("choice" in raw[f"p{j}"] or "grid" in raw[f"p{j}"])
        ]
        if parents and draw(st.booleans()):
            parent = draw(st.sampled_from(parents))
            pvalues = raw[parent].get("choice") or raw[parent].get("grid")
            raw[f"p{i}"]["when"] = {
                parent: draw(
                    st.lists(
                        st.sampled_from(pvalues),
                        min_size=1,
                        max_size=2,
                        unique_by=lambda v: (type(v).__name__, v),
                    )
                )
            }
    return raw


@settings(max_examples=150, deadline=None)
@given(raw=spaces(), seed=st.integers(0, 2**31 - 1))
def test_drawn_configs_stay_inside_bounds_and_honor_conditions(
    raw: dict[str, Any], seed: int
) -> None:
    space = parse_space(raw)
    assert check_space(space) == []
    rng = random.Random(seed)
    for _ in range(5):
        config = sample(space, rng)
        for name, param in space.items():
            if name in config:
                assert param.contains(config[name]), (name, config[name], raw[name])
            # Present exactly when its condition holds on the rest of the config.
            assert (name in config) == is_active(param, config)


@settings(max_examples=150, deadline=None)
@given(raw=spaces())
def test_parse_dump_parse_is_identity(raw: dict[str, Any]) -> None:
    space = parse_space(raw)
    again = parse_space(dump_space(space))
    assert again == space
    assert dump_space(again) == dump_space(space)


def test_same_seed_same_configs_different_seed_different() -> None:
    space = parse_space({"lr": {"loguniform": [1e-4, 1]}, "h": {"int": [1, 1000]}})
    a = [sample(space, random.Random(3)) for _ in range(1)]
    b = [sample(space, random.Random(3)) for _ in range(1)]
    c = [sample(space, random.Random(4)) for _ in range(1)]
    assert a == b
    assert a != c


def test_loguniform_is_uniform_in_log_space() -> None:
    param = Param.model_validate({"loguniform": [1e-4, 1.0]})
    rng = random.Random(0)
    draws = [math.log10(sample({"x": param}, rng)["x"]) for _ in range(4000)]
    below = sum(d < -2 for d in draws) / len(draws)  # half of the log range
    assert 0.46 < below < 0.54


def test_log_int_is_sampled_log_uniformly() -> None:
    # Log-uniform means scale-free: every decade of [1, 10000] is about equally likely
    # (a linear draw would put 90% of the mass in the last decade).
    param = Param.model_validate({"int": [1, 10000], "log": True})
    rng = random.Random(0)
    draws = [sample_value(param, rng) for _ in range(20000)]
    assert all(isinstance(d, int) and 1 <= d <= 10000 for d in draws)
    decades = [sum(10**k <= d < 10 ** (k + 1) for d in draws) / len(draws) for k in (1, 2, 3)]
    for share in decades:
        assert 0.22 < share < 0.28, decades
    assert decades[1] == pytest.approx(decades[2], abs=0.02)


def test_quantized_uniform_takes_only_steps() -> None:
    param = Param.model_validate({"uniform": [0.0, 0.5], "step": 0.05})
    rng = random.Random(1)
    seen = {sample({"d": param}, rng)["d"] for _ in range(500)}
    assert seen == {round(0.05 * k, 10) for k in range(11)}


def test_grid_is_the_condition_aware_product() -> None:
    space = parse_space(
        {
            "optimizer": {"choice": ["sgd", "momentum", "adam"]},
            "momentum": {"grid": [0.5, 0.9], "when": {"optimizer": ["momentum"]}},
            "lr": {"grid": [0.001, 0.01, 0.1]},
        }
    )
    configs = list(expand_grid(space))
    # sgd and adam: 3 lrs each; momentum: 2 momenta x 3 lrs.
    assert len(configs) == 3 + 3 + 6 == grid_size(space)
    assert len({tuple(sorted(c.items())) for c in configs}) == len(configs)
    assert all(("momentum" in c) == (c["optimizer"] == "momentum") for c in configs)


def test_grid_points_spacing() -> None:
    assert grid_values(Param.model_validate({"uniform": [0, 1], "grid_points": 5})) == [
        0,
        0.25,
        0.5,
        0.75,
        1,
    ]
    logs = grid_values(Param.model_validate({"loguniform": [1e-3, 1e-1], "grid_points": 3}))
    assert logs == pytest.approx([1e-3, 1e-2, 1e-1])
    ints = grid_values(Param.model_validate({"int": [1, 100], "log": True, "grid_points": 3}))
    assert ints == [1, 10, 100]


def test_conditions_chain_through_absent_parents() -> None:
    space = parse_space(
        {
            "c": {"choice": ["x"], "when": {"b": [True]}},
            "b": {"choice": [True, False], "when": {"a": ["on"]}},
            "a": {"choice": ["on", "off"]},
        }
    )
    assert topological_order(space) == ["a", "b", "c"]
    rng = random.Random(0)
    for _ in range(50):
        config = sample(space, rng)
        if config["a"] == "off":
            assert "b" not in config and "c" not in config


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"loguniform": [-1, 1]}, "loguniform", "low must be > 0"),
        ({"uniform": [1, 1]}, "uniform", "low must be < high"),
        ({"int": [5, 1]}, "int", "low must be <= high"),
        ({"choice": []}, "choice", "at least one value"),
        ({"choice": [1, 1]}, "choice", "distinct"),
        ({"uniform": [0, 1], "choice": [1]}, None, "exactly one distribution"),
        ({}, None, "exactly one distribution"),
        ({"uniform": [0, float("inf")]}, "uniform", "finite"),
        ({"uniform": [0, 1], "log": True}, None, "log applies only to int"),
        ({"choice": [1, 2], "step": 1}, None, "step applies only"),
        ({"int": [1, 10], "step": 0.5}, None, "whole number"),
        ({"int": [0, 10], "log": True}, None, "low >= 1"),
        ({"uniform": [0, 1], "grid_points": 1}, "grid_points", "greater than or equal to 2"),
        ({"uniform": [0, 1], "bogus": 3}, "bogus", "Extra inputs"),
    ],
)
def test_bad_params_name_the_field_and_reason(
    raw: dict[str, Any], field: str | None, reason: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Param.model_validate(raw)
    errors = info.value.errors()
    assert any(reason in e["msg"] for e in errors), errors
    if field is not None:
        assert any(field in e["loc"] for e in errors), errors


def test_condition_problems_are_found() -> None:
    space = parse_space(
        {
            "a": {"choice": ["x", "y"], "when": {"b": [1]}},
            "b": {"choice": [1, 2], "when": {"a": ["x"]}},
            "c": {"uniform": [0, 1], "when": {"nope": [1]}},
            "d": {"uniform": [0, 1], "when": {"a": ["z"]}},
        }
    )
    errors = {e.path: e.message for e in check_space(space)}
    assert errors["space.c.when.nope"] == "no such parameter in the space"
    assert "never takes 'z'" in errors["space.d.when.a"]
    cyclic = parse_space(
        {"a": {"choice": [1], "when": {"b": [1]}}, "b": {"choice": [1], "when": {"a": [1]}}}
    )
    assert "cycle" in check_space(cyclic)[0].message


def test_int_without_step_takes_every_integer() -> None:
    param = Param.model_validate({"int": [0, 10]})
    rng = random.Random(0)
    assert {sample_value(param, rng) for _ in range(2000)} == set(range(11))


def test_log_int_gives_each_integer_its_share_of_the_log_range() -> None:
    # Integer k stands for [k − ½, k + ½]: P(k) = ln((k+½)/(k−½)) / ln((high+½)/(low−½)).
    param = Param.model_validate({"int": [1, 100], "log": True})
    rng = random.Random(1)
    draws = [sample_value(param, rng) for _ in range(20000)]
    total = math.log(100.5 / 0.5)
    for k in (1, 2, 10):
        want = math.log((k + 0.5) / (k - 0.5)) / total
        assert draws.count(k) / len(draws) == pytest.approx(want, abs=0.01), k


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ({"uniform": [2, 4], "grid_points": 5}, [2.0, 2.5, 3.0, 3.5, 4.0]),
        # Even points 1, 4/3, 5/3, 2 snapped to the step's multiples from low.
        ({"uniform": [1, 2], "step": 0.25, "grid_points": 4}, [1.0, 1.25, 1.75, 2.0]),
        ({"int": [10, 20], "grid_points": 3}, [10, 15, 20]),
        # 10, 15, 20 snapped to 10 + 3k inside the bounds: 10, 16, 19.
        ({"int": [10, 20], "step": 3, "grid_points": 3}, [10, 16, 19]),
        ({"int": [1, 100], "log": True, "grid_points": 3}, [1, 10, 100]),
        ({"loguniform": [0.001, 0.1], "grid_points": 3}, [0.001, 0.01, 0.1]),
    ],
)
def test_grid_values_of_ranges(raw: dict, want: list) -> None:
    got = grid_values(Param.model_validate(raw))
    assert got == pytest.approx(want, rel=1e-12)
    assert all(type(g) is type(w) for g, w in zip(got, want, strict=True))


def test_a_range_without_grid_points_cannot_be_enumerated() -> None:
    with pytest.raises(ValueError, match="grid_points"):
        grid_values(Param.model_validate({"uniform": [0, 1]}))


def test_contains_knows_types_bounds_and_steps() -> None:
    p = Param.model_validate({"int": [10, 20], "step": 3})
    assert p.contains(13) and p.contains(19)
    assert not p.contains(True) and not p.contains(14) and not p.contains(13.0)
    assert not p.contains(22) and not p.contains(7) and not p.contains("13")
    u = Param.model_validate({"uniform": [0.5, 1.5]})
    assert u.contains(1) and u.contains(0.5) and not u.contains(1.6) and not u.contains(False)


def test_dump_writes_what_a_user_writes() -> None:
    assert Param.model_validate({"int": [1, 5]}).dump() == {"int": [1, 5]}
    assert Param.model_validate({"int": [1, 8], "log": True}).dump() == {
        "int": [1, 8],
        "log": True,
    }


def test_check_space_names_self_dependence_and_cycles() -> None:
    errs = check_space(parse_space({"a": {"choice": [1, 2], "when": {"a": [1]}}}))
    assert [(e.path, e.message) for e in errs] == [
        ("space.a.when.a", "a parameter cannot depend on itself")
    ]
    cyclic = parse_space(
        {"a": {"choice": [1], "when": {"b": [1]}}, "b": {"choice": [1], "when": {"a": [1]}}}
    )
    (err,) = check_space(cyclic)
    assert err.path == "space" and "condition cycle through" in err.message
