"""The test functions of benchmarks/search_quality.py reach their published minima at
the published minimizers, and nothing in their spaces goes below."""

from __future__ import annotations

import random

import pytest

from benchmarks.problems import PROBLEMS, Problem
from hpo.space import sample

MINIMIZERS = {
    # Branin's three minimizers (-pi, 12.275), (pi, 2.275), (9.42478, 2.475).
    "branin": [
        {"x1": -3.141592653589793, "x2": 12.275},
        {"x1": 3.141592653589793, "x2": 2.275},
        {"x1": 9.42478, "x2": 2.475},
    ],
    "hartmann6": [
        dict(
            zip(
                [f"x{i}" for i in range(1, 7)],
                [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573],
                strict=True,
            )
        )
    ],
    "rosenbrock4": [{f"x{i}": 1.0 for i in range(1, 5)}],
    "levy4": [{f"x{i}": 1.0 for i in range(1, 5)}],
    "mixed": [{"optimizer": "adam", "lr": 3e-3, "width": 128, "dropout": 0.2}],
}
PUBLISHED = {"branin": 0.397887, "hartmann6": -3.32237, "rosenbrock4": 0.0, "levy4": 0.0}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_minimum_at_the_known_minimizers(name: str) -> None:
    problem: Problem = PROBLEMS[name]()
    if name in PUBLISHED:
        assert problem.optimum == PUBLISHED[name]
    for x in MINIMIZERS[name]:
        assert problem.space.keys() == x.keys()
        assert problem.objective(x) == pytest.approx(problem.optimum, abs=1e-5)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_no_random_point_beats_the_minimum(name: str) -> None:
    problem = PROBLEMS[name]()
    rng = random.Random(0)
    values = [problem.objective(sample(problem.space, rng)) for _ in range(2000)]
    assert min(values) > problem.optimum - 1e-6
