"""The cost metrics the core reports for multi-objective studies: `train_seconds` sums the
epochs' `seconds`, `param_count` is the model's size in closed form."""

from __future__ import annotations

import pytest

from hpo.training.loop import train


@pytest.mark.parametrize(("hidden", "depth"), [(8, 1), (8, 2), (5, 3)])
def test_cost_metrics_every_epoch(hidden: int, depth: int) -> None:
    seen: list[dict[str, float]] = []
    train({"epochs": 3, "hidden": hidden, "depth": depth, "lr": 0.01}, report=seen.append)
    assert len(seen) == 3
    total = 0.0
    for metrics in seen:
        total += metrics["seconds"]
        assert metrics["train_seconds"] == pytest.approx(total)
    assert seen[0]["train_seconds"] < seen[1]["train_seconds"] < seen[2]["train_seconds"]
    # digits: 64 inputs, 10 classes; each Linear has weights and a bias, no norm by default.
    expected = 64 * hidden + hidden + (depth - 1) * (hidden * hidden + hidden) + 10 * hidden + 10
    assert {m["param_count"] for m in seen} == {expected}
