"""`hpo.numbers.finite`: the one rule for a learnable, rankable, storable value."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpo.numbers import finite


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (-0.5, -0.5),
        (np.float32(0.25), 0.25),
        (np.int64(7), 7.0),
        (torch.tensor(1.5), 1.5),
        (np.array([2.0]), 2.0),
    ],
)
def test_finite_numbers_become_plain_floats(value: object, expected: float) -> None:
    got = finite(value)
    assert type(got) is float and got == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        math.nan,
        math.inf,
        -math.inf,
        np.float64("nan"),
        torch.tensor(float("inf")),
        True,
        np.bool_(False),
        "1.5",
        [1.0],
        np.array([1.0, 2.0]),
        torch.tensor([1.0, 2.0]),
    ],
)
def test_everything_else_is_none(value: object) -> None:
    assert finite(value) is None
