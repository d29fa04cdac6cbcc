"""User-function trainables with known optima: examples, test fixtures and benchmark problems.

A user trainable is any `function(config, report)`: it reads its hyperparameters from
`config` (plus `epochs` and `seed`) and calls `report({...})` once per epoch. These ones
cost no training, so searches over them measure hpo itself.

`branin` is multi-fidelity: at epoch e of E it reports Branin plus a bias that shrinks as
1/e (so early epochs rank configurations roughly as the last epoch does, the premise of
Hyperband and ASHA), reaching the exact Branin value at the last epoch. Minimum 0.397887.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

Report = Callable[[Mapping[str, Any]], None]

BRANIN_MIN = 0.397887
HARTMANN6_MIN = -3.32237


def branin_value(x1: float, x2: float) -> float:
    """Branin-Hoo on x1 in [-5, 10], x2 in [0, 15]."""
    b, c, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H6_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
_H6_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
_H6_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6_value(x: list[float]) -> float:
    """Hartmann 6-D on [0, 1]^6."""
    total = 0.0
    for alpha, a, p in zip(_H6_ALPHA, _H6_A, _H6_P, strict=True):
        total -= alpha * math.exp(
            -sum(ai * (xi - pi * 1e-4) ** 2 for ai, xi, pi in zip(a, x, p, strict=True))
        )
    return total


def branin(config: Mapping[str, Any], report: Report) -> None:
    """Multi-fidelity Branin over `x1`, `x2`; reports `value` (minimize) each epoch.

    `sleep_s` (optional) makes each epoch take that long, for tests that need trials
    to be in flight; `fail_if_x1_above` makes such trials raise, for failure tests.
    """
    epochs = int(config.get("epochs", 1))
    x1, x2 = float(config["x1"]), float(config["x2"])
    if x1 > float(config.get("fail_if_x1_above", math.inf)):
        raise ValueError(f"x1={x1} is above fail_if_x1_above")
    exact = branin_value(x1, x2)
    for epoch in range(1, epochs + 1):
        time.sleep(float(config.get("sleep_s", 0.0)))
        bias = 10.0 * (1.0 / epoch - 1.0 / epochs)
        report({"epoch": epoch, "value": exact + bias})


def hartmann6(config: Mapping[str, Any], report: Report) -> None:
    """Hartmann6 over `x1`..`x6`; one report per epoch of the exact value (minimize)."""
    value = hartmann6_value([float(config[f"x{i}"]) for i in range(1, 7)])
    for epoch in range(1, int(config.get("epochs", 1)) + 1):
        report({"epoch": epoch, "value": value})


def constant(config: Mapping[str, Any], report: Report) -> None:
    """Reports `x` for `epochs` epochs and nothing else: the cheapest possible trial."""
    for epoch in range(1, int(config.get("epochs", 1)) + 1):
        report({"epoch": epoch, "value": float(config.get("x", 0.0))})


def flaky(config: Mapping[str, Any], report: Report) -> None:
    """Fails the first attempt of each trial, then behaves like `constant`.

    The attempt is remembered as a file named after the trial's seed in `marker_dir`,
    so Ray's retry of the same trial (`budget.max_failures`) succeeds.
    """
    from pathlib import Path

    marker = Path(str(config["marker_dir"])) / f"attempted-{config.get('seed')}"
    if not marker.exists():
        marker.touch()
        raise RuntimeError("first attempt fails on purpose")
    constant(config, report)
