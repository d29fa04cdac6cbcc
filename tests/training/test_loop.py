"""The loop's contract: one report per epoch with the documented keys, reproducibility."""

from __future__ import annotations

import math

import pytest

from hpo.training.loop import TrainResult, train

SMALL = {"epochs": 3, "hidden": 32, "depth": 1, "lr": 0.01}


def test_report_is_called_once_per_epoch_with_documented_keys() -> None:
    seen: list[dict[str, float]] = []
    result = train(SMALL, report=seen.append)
    assert isinstance(result, TrainResult)
    assert [m["epoch"] for m in seen] == [1, 2, 3]
    keys = {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}
    provenance = {"hpo_data_seed", "hpo_split_hash"}
    assert set(seen[0]) == keys | provenance  # provenance only in the first report
    assert all(set(m) == keys for m in seen[1:])
    assert seen[0]["hpo_data_seed"] == 0 and len(seen[0]["hpo_split_hash"]) == 12
    seen[0] = {k: v for k, v in seen[0].items() if k not in provenance}
    assert all(type(m["epoch"]) is int for m in seen)
    assert all(
        isinstance(v, float) and math.isfinite(v)
        for m in seen
        for k, v in m.items()
        if k != "epoch"
    )
    assert result.history == seen and result.final == seen[-1]
    assert result.best == min(seen, key=lambda m: m["val_loss"])
    assert not result.stopped_early and result.device == "cpu"


def test_regression_reports_rmse() -> None:
    result = train({**SMALL, "dataset": "synthetic_regression", "n_samples": 200})
    assert set(result.final) == {"epoch", "train_loss", "val_loss", "val_rmse", "lr", "seconds"}
    assert result.final["val_rmse"] == pytest.approx(math.sqrt(result.final["val_loss"]), rel=1e-5)


def _without_time(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in m.items() if k != "seconds"} for m in history]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {
            "model": "cnn",
            "channels": 8,
            "dropout": 0.2,
            "norm": "batch",
            "augment_flip": True,
            "augment_shift": 1,
            "augment_noise": 0.05,
            "epochs": 2,
        },
    ],
)
def test_seeded_runs_are_bit_reproducible(extra: dict) -> None:
    a = train({**SMALL, "dropout": 0.1, **extra})
    b = train({**SMALL, "dropout": 0.1, **extra})
    assert _without_time(a.history) == _without_time(b.history)
    c = train({**SMALL, "dropout": 0.1, **extra, "seed": 1})
    assert _without_time(a.history) != _without_time(c.history)


def test_every_feature_together_runs() -> None:
    result = train(
        {
            **SMALL,
            "preprocess": "zca_whiten",
            "schedule": "cosine",
            "warmup_epochs": 1,
            "l1": 1e-5,
            "grad_clip_norm": 1.0,
            "grad_clip_value": 0.5,
            "grad_accum_steps": 2,
            "label_smoothing": 0.1,
            "init": "kaiming_normal",
            "lr_scaling": "sqrt",
            "norm": "layer",
            "residual": True,
            "depth": 2,
            "optimizer": "adamw",
            "weight_decay": 0.01,
        }
    )
    assert math.isfinite(result.final["val_loss"])


def test_diverging_run_stops() -> None:
    result = train(
        {**SMALL, "epochs": 10, "dataset": "synthetic_regression", "optimizer": "sgd", "lr": 50.0}
    )
    assert not math.isfinite(result.final["train_loss"])
    assert result.stopped_early and len(result.history) < 10
