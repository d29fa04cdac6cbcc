"""The loop's contract: one report per epoch with the documented keys, reproducibility."""

from __future__ import annotations

import contextlib
import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from hpo.training.config import ConfigError, build_config
from hpo.training.data import load_dataset, split
from hpo.training.loop import TrainResult, batch_plan, evaluate, loss_functions, train

SMALL = {"epochs": 3, "hidden": 32, "depth": 1, "lr": 0.01}


def test_report_is_called_once_per_epoch_with_documented_keys() -> None:
    seen: list[dict[str, float]] = []
    result = train(SMALL, report=seen.append)
    assert isinstance(result, TrainResult)
    assert [m["epoch"] for m in seen] == [1, 2, 3]
    keys = {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}
    keys |= {"train_seconds", "param_count"}
    provenance = {"hpo_data_seed", "hpo_split_hash"}
    assert set(seen[0]) == keys | provenance  # provenance only in the first report
    assert all(set(m) == keys for m in seen[1:])
    assert seen[0]["hpo_data_seed"] == 0 and len(seen[0]["hpo_split_hash"]) == 12
    seen[0] = {k: v for k, v in seen[0].items() if k not in provenance}
    assert all(type(m["epoch"]) is int and type(m["param_count"]) is int for m in seen)
    assert all(
        isinstance(v, float) and math.isfinite(v)
        for m in seen
        for k, v in m.items()
        if k not in ("epoch", "param_count")
    )
    assert result.history == seen and result.final == seen[-1]
    assert result.best == min(seen, key=lambda m: m["val_loss"])
    assert not result.stopped_early and result.device == "cpu"


def test_regression_reports_rmse() -> None:
    result = train({**SMALL, "dataset": "synthetic_regression", "n_samples": 200})
    assert set(result.final) == {
        "epoch",
        "train_loss",
        "val_loss",
        "val_rmse",
        "lr",
        "seconds",
        "train_seconds",
        "param_count",
    }
    assert result.final["val_rmse"] == pytest.approx(math.sqrt(result.final["val_loss"]), rel=1e-5)


def _without_time(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in m.items() if k not in ("seconds", "train_seconds")} for m in history]


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


# Wine with a large SGD step: val_loss bottoms out at epoch 6 of 8 (checked below).
BOUNCY = {
    "dataset": "wine",
    "epochs": 8,
    "hidden": 16,
    "depth": 1,
    "optimizer": "sgd",
    "lr": 1.0,
    "norm": "batch",
    "preprocess": "standardize",
    "batch_size": 16,
}


def _val_loss_of(model: torch.nn.Module, config: dict) -> float:
    """The delivered model's validation loss, computed here from the data alone."""
    cfg = build_config(config)
    s = split(load_dataset(cfg), cfg.val_fraction, cfg.data_seed)
    mean = s.train_x.mean(0)
    std = s.train_x.std(0, correction=0)
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model((s.val_x - mean) / std), s.val_y))


def test_keep_best_delivers_the_best_epochs_weights() -> None:
    result = train(BOUNCY, keep_best=("val_loss", "min"))
    losses = [m["val_loss"] for m in result.history]
    assert result.epochs_run == 8 and result.best_epoch == losses.index(min(losses)) + 1
    assert result.best_epoch < result.epochs_run  # otherwise this test proves nothing
    assert result.delivered == result.best and result.final == result.history[-1]
    assert result.model is not None
    assert _val_loss_of(result.model, BOUNCY) == pytest.approx(min(losses), rel=1e-5)


def test_without_keep_best_the_last_epoch_is_delivered() -> None:
    result = train(BOUNCY)
    assert result.delivered == result.final == result.history[-1]
    assert result.model is not None
    assert _val_loss_of(result.model, BOUNCY) == pytest.approx(result.final["val_loss"], rel=1e-5)


def test_keep_best_by_accuracy_maximizes_and_ties_go_to_the_earlier_epoch() -> None:
    result = train(BOUNCY, keep_best=("val_accuracy", "max"))
    accs = [m["val_accuracy"] for m in result.history]
    assert result.best_epoch == accs.index(max(accs)) + 1
    assert result.delivered["val_accuracy"] == max(accs)


def test_test_split_metrics_come_once_from_the_delivered_model() -> None:
    seen: list[dict] = []
    result = train({**BOUNCY, "test_fraction": 0.2}, seen.append, keep_best=("val_loss", "min"))
    assert set(result.test) == {"test_loss", "test_accuracy"}
    assert all(not any(k.startswith("test") for k in m) for m in seen)
    assert 0.0 <= result.test["test_accuracy"] <= 1.0
    assert train(BOUNCY).test == {}


def test_keep_best_must_name_a_reported_metric() -> None:
    with pytest.raises(ConfigError, match="keep_best"):
        train(SMALL, keep_best=("val_rmse", "min"))


def test_batchnorm_survives_a_last_batch_of_one_sample() -> None:
    # digits: 1438 training rows; 1438 = 3·479 + 1 leaves one sample for the last batch.
    result = train({"norm": "batch", "batch_size": 3, "epochs": 1, "hidden": 8, "depth": 1})
    assert math.isfinite(result.final["train_loss"])


@pytest.mark.parametrize(
    ("n", "batch", "accum"), [(10, 3, 1), (10, 3, 2), (7, 3, 2), (9, 3, 1), (1, 4, 1), (5, 4, 2)]
)
def test_batch_plan_covers_every_row_once_without_size_one_batches(
    n: int, batch: int, accum: int
) -> None:
    plan = batch_plan(n, batch, accum)
    bounds = [b for step in plan for b in step]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert all(hi - lo >= 2 for lo, hi in bounds) or n == 1
    assert all(1 <= len(step) <= accum for step in plan)


def test_reported_train_loss_has_no_label_smoothing() -> None:
    # lr ≈ 0: the model never moves, so the reported losses depend on the data alone;
    # smoothing changes what is optimized, not what is reported.
    still = {**SMALL, "epochs": 1, "optimizer": "sgd", "lr": 1e-30}
    plain = train(still).final
    smoothed = train({**still, "label_smoothing": 0.3}).final
    assert smoothed["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-6)
    assert smoothed["val_loss"] == pytest.approx(plain["val_loss"], rel=1e-6)


def test_label_smoothed_training_loss_matches_its_formula() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    y = torch.tensor([0, 1])
    eps, k = 0.2, 3
    logp = logits.log_softmax(-1)
    nll = -logp[torch.arange(2), y]
    want = ((1 - eps) * nll + eps * (-logp.sum(-1) / k)).mean()
    optimized, reported = loss_functions(regression=False, label_smoothing=eps)
    torch.testing.assert_close(optimized(logits, y), want)
    assert reported is not None
    torch.testing.assert_close(reported(logits, y), nll.mean())
    plain, none = loss_functions(regression=False, label_smoothing=0.0)
    torch.testing.assert_close(plain(logits, y), nll.mean())
    assert none is None  # nothing extra to compute


def test_augmentation_runs_in_pixel_space_before_per_channel_standardization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hpo.training import loop

    seen: list[torch.Tensor] = []
    original = loop.build_model

    def recording(*args: object, **kwargs: object) -> torch.nn.Module:
        model = original(*args, **kwargs)  # type: ignore[arg-type]
        model.register_forward_pre_hook(
            lambda m, inputs: seen.append(inputs[0].detach().clone()) if m.training else None
        )
        return model

    monkeypatch.setattr(loop, "build_model", recording)
    config = {**SMALL, "epochs": 1, "preprocess": "standardize", "augment_shift": 2}
    train(config)
    cfg = build_config(config)
    s = split(load_dataset(cfg), cfg.val_fraction, cfg.data_seed)
    mean, std = s.train_x.mean(), s.train_x.std(correction=0)
    x = torch.cat(seen)
    # Shifted-in pixels are black (raw 0) standardized, never a raw 0 in z space; and
    # one channel's statistics bound every input (per pixel, |z| reached 37).
    assert int((x == 0).sum()) == 0
    torch.testing.assert_close(x.min(), (0 - mean) / std)
    assert x.max() <= (1 - mean) / std + 1e-5


def test_evaluation_loss_is_plain_cross_entropy_and_accuracy_counts_argmax() -> None:
    model = torch.nn.Linear(2, 3)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]])
    y = torch.tensor([0, 2, 1, 2])
    logits = model(x).detach()
    logp = logits - logits.exp().sum(1, keepdim=True).log()
    want_loss = -logp[torch.arange(4), y].mean()
    want_acc = (logits.argmax(1) == y).float().mean()
    val_loss, val_acc = evaluate(model, x, y, False, contextlib.nullcontext)
    torch.testing.assert_close(val_loss, want_loss)
    torch.testing.assert_close(val_acc.float(), want_acc)


USER_MODEL = "hpo.examples.models:build"


def test_a_user_model_trains_and_follows_the_cosine_schedule() -> None:
    config = {
        "model": USER_MODEL,
        "width": 24,  # outside the core's vocabulary: passed on to build()
        "blocks": 2,
        "epochs": 4,
        "batch_size": 100,
        "optimizer": "momentum",
        "lr": 0.2,
        "schedule": "cosine",
        "min_lr": 0.02,
        "preprocess": "standardize",
    }
    seen: list[dict[str, float]] = []
    result = train(config, report=seen.append)
    linears = [m for m in result.model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 24), (24, 24), (24, 10)]
    # 1438 training rows in batches of 100 (the last one of 38): 15 steps per epoch. The
    # lr reported for epoch e is that of its last step, k = 15e − 1, at t = k/15 epochs.
    steps, horizon, lo, hi = 15, 4, 0.02, 0.2
    for e, metrics in enumerate(seen, start=1):
        t = (steps * e - 1) / steps
        want = lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * t / horizon))
        assert metrics["lr"] == pytest.approx(want, rel=1e-9)
    assert result.final["val_accuracy"] > 0.9
    assert seen[-1]["train_loss"] < seen[0]["train_loss"]


def test_the_core_initializes_clips_and_accumulates_a_user_model() -> None:
    # A vanishing lr leaves the weights where init put them: orthogonal rows.
    result = train(
        {
            "model": USER_MODEL,
            "width": 32,
            "epochs": 1,
            "optimizer": "sgd",
            "lr": 1e-12,
            "init": "orthogonal",
            "grad_clip_norm": 0.5,
            "grad_accum_steps": 2,
            "l1": 1e-4,
        }
    )
    first = result.model[1].weight.detach()  # 32 × 64: rows orthonormal
    torch.testing.assert_close(first @ first.T, torch.eye(32), atol=1e-4, rtol=0)
    assert result.model[1].bias.abs().max() < 1e-9  # zeroed, then moved by lr 1e-12


def test_user_model_errors_name_the_model_field(tmp_path, monkeypatch) -> None:
    (tmp_path / "bad_models.py").write_text("def not_a_module(config, shape, n):\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"returned int, not a torch\.nn\.Module") as info:
        train({"model": "bad_models:not_a_module", "epochs": 1})
    assert info.value.field == "model"
    with pytest.raises(ConfigError, match="has no function 'nope'") as info:
        train({"model": "bad_models:nope", "epochs": 1})
    assert info.value.field == "model"
    # Without user code, a name outside the vocabulary is a typo.
    with pytest.raises(ConfigError, match="unknown hyperparameter") as info:
        train({"model": "mlp", "width": 3})
    assert info.value.field == "width"


@pytest.mark.parametrize(
    "extra",
    [
        {"model": "rnn", "cell": "gru", "hidden": 16, "depth": 2, "bidirectional": True},
        {"model": "transformer", "d_model": 16, "heads": 2, "depth": 1, "ff_mult": 2},
    ],
)
def test_sequence_models_train_on_digits_with_every_knob(extra: dict) -> None:
    config = {
        **SMALL,
        **extra,
        "epochs": 2,
        "norm": "layer",
        "dropout": 0.1,
        "init": "xavier_uniform",
        "grad_clip_norm": 1.0,
        "optimizer": "adamw",
        "schedule": "noam",
        "warmup_epochs": 1,
    }
    a, b = train(config), train(config)
    assert _without_time(a.history) == _without_time(b.history)
    assert a.final["val_accuracy"] > 0.3  # ten classes: chance is 0.1
