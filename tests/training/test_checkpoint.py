"""A run restored from its checkpoint continues exactly as the uninterrupted run."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from hpo.training.checkpoint import (
    MemoryCheckpointer,
    delivered_weights,
    from_bytes,
)
from hpo.training.loop import train

# Dropout, augmentation (its generator), mixup (NumPy's generator), a plateau schedule
# and early stopping: every piece of state a restore must bring back.
STATEFUL: dict[str, Any] = {
    "model": "cnn",
    "channels": 4,
    "dropout": 0.3,
    "epochs": 5,
    "lr": 0.05,
    "optimizer": "adam",
    "schedule": "plateau",
    "patience": 0,
    "augment_flip": True,
    "mixup_alpha": 0.2,
    "early_stopping_patience": 4,
    "seed": 3,
}


def _without_time(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in m.items() if k not in ("seconds", "train_seconds")} for m in history]


@pytest.mark.parametrize("config", [{"epochs": 5, "hidden": 16, "seed": 1}, STATEFUL])
def test_restored_run_continues_bit_identically(config: dict[str, Any]) -> None:
    saver = MemoryCheckpointer(every=2)
    whole = train(config, checkpoint=saver)
    # every=2 over 5 epochs: epochs 2 and 4, and the last one.
    assert [epoch for epoch, _, _ in saver.saved] == [2, 4, 5]
    state = from_bytes(saver.saved[0][2])
    assert state["epoch"] == 2

    reports: list[dict[str, float]] = []
    resumed = train(config, reports.append, checkpoint=MemoryCheckpointer(start=state))
    assert [m["epoch"] for m in reports] == [3, 4, 5]  # only the epochs after the state
    assert _without_time(resumed.history) == _without_time(whole.history)
    for name, tensor in whole.model.state_dict().items():  # type: ignore[union-attr]
        assert torch.equal(tensor, resumed.model.state_dict()[name])  # type: ignore[union-attr]


def test_best_flag_marks_improving_epochs_and_kept_weights_are_delivered() -> None:
    config = {"epochs": 4, "hidden": 16, "seed": 2}
    saver = MemoryCheckpointer(every=1)
    result = train(config, checkpoint=saver, keep_best=("val_loss", "min"))
    losses = [m["val_loss"] for m in result.history]
    expected = [loss < min(losses[:i], default=float("inf")) for i, loss in enumerate(losses)]
    assert [best for _, best, _ in saver.saved] == expected
    last = from_bytes(saver.saved[-1][2])
    weights = delivered_weights(last)
    assert result.model is not None
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, weights[name])


def test_no_checkpoint_when_every_is_zero() -> None:
    saver = MemoryCheckpointer(every=0)
    train({"epochs": 2, "hidden": 8}, checkpoint=saver)
    assert saver.saved == []


def test_a_restored_run_counts_the_training_time_before_its_checkpoint() -> None:
    config = {"dataset": "digits", "model": "mlp", "epochs": 3, "hidden": 16, "seed": 1}
    saver = MemoryCheckpointer(every=1)
    whole = train(config, checkpoint=saver)
    (epoch, _, data) = saver.saved[1]
    assert epoch == 2
    resumed = train(config, checkpoint=MemoryCheckpointer(start=from_bytes(data)))
    before, third = whole.history[1]["train_seconds"], resumed.history[2]
    assert third["train_seconds"] == pytest.approx(before + third["seconds"])
