"""Test functions with known minima for `search_quality.py`, as hpo spaces.

Each problem is a function returning a `Problem`; `PROBLEMS` maps names to them. The
minima are the published ones (Surjanovic & Bingham's Virtual Library of Simulation
Experiments), checked by `tests/benchmarks/test_problems.py` at the known minimizers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.space import Param, parse_space


@dataclass(frozen=True)
class Problem:
    """A test function to minimize with a known minimum, over an hpo space."""

    name: str
    space: dict[str, Param]
    objective: Callable[[Mapping[str, Any]], float]
    optimum: float


def branin() -> Problem:
    """Branin-Hoo on x1 in [-5, 10], x2 in [0, 15]: minimum 0.397887 at three points."""

    def f(c: Mapping[str, Any]) -> float:
        x1, x2 = c["x1"], c["x2"]
        b, k, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
        return float((x2 - b * x1**2 + k * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s)

    space = parse_space({"x1": {"uniform": [-5.0, 10.0]}, "x2": {"uniform": [0.0, 15.0]}})
    return Problem("branin", space, f, 0.397887)


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6() -> Problem:
    """Hartmann 6-D on [0, 1]^6: minimum -3.32237."""
    names = [f"x{i}" for i in range(1, 7)]

    def f(c: Mapping[str, Any]) -> float:
        x = np.array([c[n] for n in names])
        return float(-_H6_ALPHA @ np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1)))

    space = parse_space({n: {"uniform": [0.0, 1.0]} for n in names})
    return Problem("hartmann6", space, f, -3.32237)


def rosenbrock4() -> Problem:
    """Rosenbrock 4-D on [-5, 10]^4: minimum 0 at (1, 1, 1, 1); a long curved valley."""
    names = [f"x{i}" for i in range(1, 5)]

    def f(c: Mapping[str, Any]) -> float:
        x = [c[n] for n in names]
        return float(sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3)))

    space = parse_space({n: {"uniform": [-5.0, 10.0]} for n in names})
    return Problem("rosenbrock4", space, f, 0.0)


def levy4() -> Problem:
    """Levy 4-D on [-10, 10]^4: minimum 0 at (1, 1, 1, 1); many local minima."""
    names = [f"x{i}" for i in range(1, 5)]

    def f(c: Mapping[str, Any]) -> float:
        w = [1 + (c[n] - 1) / 4 for n in names]
        value = math.sin(math.pi * w[0]) ** 2
        for wi in w[:-1]:
            value += (wi - 1) ** 2 * (1 + 10 * math.sin(math.pi * wi + 1) ** 2)
        value += (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
        return float(value)

    space = parse_space({n: {"uniform": [-10.0, 10.0]} for n in names})
    return Problem("levy4", space, f, 0.0)


_MIXED_OFFSET = {"sgd": 0.6, "adam": 0.0, "rmsprop": 0.3}


def mixed() -> Problem:
    """A training-like mixed space: a categorical optimizer, a log-scaled learning rate,
    a log-scaled integer width and a uniform dropout, with interactions.

    Minimum 0 at optimizer=adam, lr=3e-3, width=128, dropout=0.2 (Branin-like curvature
    in log(lr) × dropout; each optimizer shifts the best learning rate and adds an
    offset, so the categorical matters and interacts with lr).
    """

    def f(c: Mapping[str, Any]) -> float:
        shift = {"sgd": 1.0, "adam": 0.0, "rmsprop": 0.5}[c["optimizer"]]
        u = math.log10(c["lr"]) - (math.log10(3e-3) + shift)
        v = c["dropout"] - 0.2
        width = math.log2(c["width"] / 128)
        return float(_MIXED_OFFSET[c["optimizer"]] + u**2 + 4 * (v - 0.3 * u) ** 2 + 0.1 * width**2)

    space = parse_space(
        {
            "optimizer": {"choice": ["sgd", "adam", "rmsprop"]},
            "lr": {"loguniform": [1e-5, 1.0]},
            "width": {"int": [8, 1024], "log": True},
            "dropout": {"uniform": [0.0, 0.6]},
        }
    )
    return Problem("mixed", space, f, 0.0)


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "branin": branin,
    "hartmann6": hartmann6,
    "rosenbrock4": rosenbrock4,
    "levy4": levy4,
    "mixed": mixed,
}
