"""A run restored from its checkpoint continues exactly as the uninterrupted run."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from hpo.training.checkpoint import (
    MemoryCheckpointer,
    SaveSchedule,
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


def test_save_schedule_every_n_epochs() -> None:
    schedule = SaveSchedule(3)
    assert [schedule.due(epoch, 1.0) for epoch in range(1, 8)] == [
        False,
        False,
        True,
        False,
        False,
        True,
        False,
    ]
    assert not SaveSchedule(0).enabled and not SaveSchedule(0).due(1, 5.0)


def test_auto_keeps_saving_within_3_percent_of_the_training_time_so_far() -> None:
    schedule = SaveSchedule("auto")
    assert schedule.due(1, 0.020)  # the first epoch: no cost known yet
    schedule.saved(0.001)  # 1 ms; another needs (1 + 1) / 0.03 = 66.7 ms of training
    assert [schedule.due(e, 0.020) for e in (2, 3)] == [False, False]  # 40, 60 ms
    assert schedule.due(4, 0.020)  # 80 ms
    schedule.saved(0.0012)  # now (2.2 + 1.2) / 0.03 = 113.3 ms
    assert [schedule.due(e, 0.020) for e in (5, 6)] == [False, True]  # 100, 120 ms
    slow = SaveSchedule("auto")
    slow.due(1, 1.0)
    slow.saved(0.002)
    assert all(slow.due(e, 1.0) for e in range(2, 6))  # 1 s epochs: every one


@pytest.mark.parametrize("every", [-1, 1.5, "sometimes", True])
def test_save_schedule_refuses_what_is_not_a_count_or_auto(every: Any) -> None:
    with pytest.raises(ValueError, match="checkpoint every"):
        SaveSchedule(every)


class SlowCheckpointer(MemoryCheckpointer):
    """Takes `pause` seconds per save, like a slow store."""

    pause = 0.0

    def save(self, state: dict[str, Any], *, epoch: int, best: bool) -> None:
        import time

        time.sleep(self.pause)
        super().save(state, epoch=epoch, best=best)


def test_auto_saves_seldom_when_a_save_costs_many_epochs() -> None:
    config = {"epochs": 6, "hidden": 8, "seed": 1}
    dear = SlowCheckpointer(every="auto")
    # A save of 0.5 s waits for 10 s of training: far more than epochs 2-5 of this tiny
    # MLP take, so only the first epoch (no cost known yet) and the last are saved.
    dear.pause = 0.5
    train(config, checkpoint=dear)
    saved = [epoch for epoch, _, _ in dear.saved]
    assert saved[0] == 1 and saved[-1] == 6 and len(saved) < 6
