"""gp: hpo's own Gaussian-process sampler, its encoding, batches, failures and resume;
and the math of `gaussian_process` against closed forms."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
import torch

from hpo.samplers import create_sampler
from hpo.samplers.base import Sampler, continued_seed
from hpo.samplers.gaussian_process import log_ei, matern52, warp
from hpo.space import parse_space

from .common import MIXED, expected_names, mixed_objective, run

PLANE = parse_space({"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}})
SMALL = parse_space({"a": {"choice": ["p", "q", "r"]}, "n": {"int": [1, 4]}})
CONDITIONAL = parse_space(
    {
        "opt": {"choice": ["sgd", "momentum"]},
        "momentum": {"uniform": [0.5, 0.99], "when": {"opt": ["momentum"]}},
        "lr": {"loguniform": [1e-4, 1.0]},
    }
)


def gp(space: object = PLANE, seed: int = 0, **options: object) -> Sampler:
    return create_sampler("gp", space, mode="min", seed=seed, **options)  # type: ignore[arg-type]


def bowl(config: dict) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2


def key(config: dict | None) -> tuple:
    assert config is not None
    return tuple(sorted((k, type(v).__name__, v) for k, v in config.items()))


def branin(c: dict) -> float:
    x1, x2 = c["x1"], c["x2"]
    return (
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10
    )


# --- closed forms ---------------------------------------------------------------------


def test_matern52_matches_its_formula() -> None:
    a = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.6, 0.8]], dtype=torch.float64)  # distance 1
    r = 0.5  # lengthscale 2 on both axes
    expected = (1 + math.sqrt(5) * r + 5 * r * r / 3) * math.exp(-math.sqrt(5) * r)
    got = matern52(a, b, torch.tensor([2.0, 2.0], dtype=torch.float64))
    assert float(got) == pytest.approx(expected, rel=1e-12)
    assert float(matern52(a, a, torch.tensor([2.0, 2.0], dtype=torch.float64))) == 1.0


@pytest.mark.parametrize("z", [3.0, 0.5, 0.0, -0.9, -1.0, -1.1, -5.0, -20.0, -40.0, -300.0])
def test_log_ei_is_accurate_far_below_the_incumbent(z: float) -> None:
    mpmath.mp.dps = 200
    zz = mpmath.mpf(z)
    exact = mpmath.log(zz * mpmath.ncdf(zz) + mpmath.npdf(zz))
    got = float(log_ei(torch.tensor([z], dtype=torch.float64)))
    assert got == pytest.approx(float(exact), rel=1e-6)


def test_warp_is_log1p_of_the_gap_to_the_best_over_the_median_gap() -> None:
    y = np.array([3.0, 0.0, 1.0, 2.0, 100.0])  # min 0, median 2
    expected = [math.log(1 + 3 / 2), 0.0, math.log(1.5), math.log(2.0), math.log(51.0)]
    assert warp(y).tolist() == pytest.approx(expected, rel=1e-12)
    # Increasing (same minimizers) and blind to a positive scale and a shift.
    assert np.argsort(warp(y)).tolist() == np.argsort(y).tolist()
    assert warp(7.0 * y - 5.0).tolist() == pytest.approx(expected, rel=1e-12)


def test_warp_with_most_values_tied_at_the_best_uses_the_range() -> None:
    # median == min: the spread is max - min = 4, so 5 maps to log 2.
    assert warp(np.array([1.0, 1.0, 1.0, 5.0])).tolist() == pytest.approx(
        [0.0, 0.0, 0.0, math.log(2.0)], rel=1e-12
    )
    assert warp(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]


# --- the sampler --------------------------------------------------------------------------


def test_initial_design_is_short_in_2d_and_grows_with_dimension() -> None:
    two = gp()
    run(two, bowl, 6)
    assert two.fit_count == 0  # type: ignore[attr-defined]
    two.ask("model")
    assert two.fit_count == 1  # type: ignore[attr-defined]  # the 7th trial uses the model

    eight = parse_space({f"x{i}": {"uniform": [0.0, 1.0]} for i in range(8)})
    wide = gp(eight)
    run(wide, lambda c: sum(v * v for v in c.values()), 17)
    assert wide.fit_count == 0  # type: ignore[attr-defined]
    wide.tell("x", 0.0)  # an unknown key changes nothing
    run(wide, lambda c: sum(v * v for v in c.values()), 1, prefix="last")
    wide.ask("model")
    assert wide.fit_count == 1  # type: ignore[attr-defined]


def test_a_batch_of_pending_asks_has_no_duplicates_in_a_small_discrete_space() -> None:
    sampler = gp(SMALL, n_initial_points=3)
    run(sampler, lambda c: {"p": 0, "q": 1, "r": 2}[c["a"]] + abs(c["n"] - 2), 3)
    pending = [sampler.ask(f"p{i}") for i in range(9)]  # the other 9 of 12 configs
    assert len({key(c) for c in pending}) == 9


def test_pending_asks_spread_out_instead_of_piling_onto_the_best_point() -> None:
    sampler = gp()
    run(sampler, bowl, 8)
    batch = [sampler.ask(f"p{i}") for i in range(4)]
    points = [(c["x"], c["y"]) for c in batch if c]
    gaps = [math.dist(a, b) for a, b in itertools.combinations(points, 2)]
    # Without fantasies all four would be the one maximizer of EI (gap 0).
    assert min(gaps) > 0.02


def test_conditional_parameters_are_absent_when_inactive_and_not_modelled() -> None:
    sampler = gp(CONDITIONAL)
    configs = run(sampler, lambda c: (math.log10(c["lr"]) + 2) ** 2 + c.get("momentum", 1.0), 16)
    assert {c["opt"] for c in configs} == {"sgd", "momentum"}
    for config in configs:
        assert set(config) == expected_names(CONDITIONAL, config)
    # Features: opt one-hot (2 columns), then momentum, then lr (topological order).
    rows = [row for row, c in zip(sampler._x, configs, strict=True) if c["opt"] == "sgd"]  # type: ignore[attr-defined]
    assert len(rows) >= 2
    assert len({row[2] for row in rows}) == 1  # one neutral momentum for every sgd trial
    assert len({row[3] for row in rows}) == len(rows)  # lr is modelled


def test_a_failed_point_is_never_proposed_again() -> None:
    sampler = gp(SMALL, n_initial_points=2)
    run(sampler, lambda c: float(c["n"]), 2)
    asked = []
    for i in range(10):  # the 10 configs left, each failing as soon as it is tried
        config = sampler.ask(f"f{i}")
        asked.append(key(config))
        sampler.tell(f"f{i}", None, state="failed")
    assert len(set(asked)) == 10


def test_log_scaled_parameters_are_spread_in_log_space() -> None:
    space = parse_space(
        {"lr": {"loguniform": [1e-4, 1.0]}, "units": {"int": [1, 10000], "log": True}}
    )
    sampler = gp(space, n_initial_points=64)
    configs = [sampler.ask(str(i)) for i in range(64)]
    # Log-uniform: half of the draws below 1e-2 and below 100; uniform would give ~1%.
    low_lr = sum(c["lr"] < 1e-2 for c in configs if c) / 64
    low_units = sum(c["units"] < 100 for c in configs if c) / 64
    assert 0.35 < low_lr < 0.65 and 0.35 < low_units < 0.65


def test_integers_are_ints_and_categoricals_are_listed_values() -> None:
    configs = run(gp(MIXED), mixed_objective, 14)
    for config in configs:
        assert set(config) == expected_names(MIXED, config)
        for name, value in config.items():
            assert MIXED[name].contains(value), (name, value)
            if MIXED[name].kind == "int":
                assert type(value) is int
    assert len({c["optimizer"] for c in configs[10:]}) >= 1


def test_max_mode_climbs() -> None:
    sampler = create_sampler("gp", PLANE, mode="max", seed=0)
    configs = run(sampler, lambda c: -bowl(c), 15)
    assert min(bowl(c) for c in configs[5:]) < 0.01


def test_resume_through_observe_continues_without_repeating() -> None:
    first = gp(seed=5)
    before = run(first, bowl, 10)
    resumed = gp(seed=continued_seed(5, 10))
    for config in before:
        resumed.observe(config, bowl(config))
    after = run(resumed, bowl, 10, prefix="r")
    assert resumed.fit_count >= 1  # type: ignore[attr-defined]  # the model, no new design
    assert len({key(c) for c in before + after}) == 20


@pytest.mark.slow
def test_finds_the_branin_optimum_region_in_a_modest_budget() -> None:
    space = parse_space({"x1": {"uniform": [-5.0, 10.0]}, "x2": {"uniform": [0.0, 15.0]}})
    configs = run(gp(space, seed=1), branin, 30)
    # Branin's minimum is 0.397887; 30 random points typically stay above 1.
    assert min(branin(c) for c in configs) < 0.397887 + 0.1
