"""Mixed precision: `amp: fp16` beside bf16, and the loop's loss-scaling path.

CUDA is not faked here. On CPU, fp16 (like bf16) falls back to float32 with a warning;
the loop's GradScaler path runs with torch's CPU GradScaler on float32, where scaling by
a power of two is exact, so it must change nothing unless a gradient overflows.
"""

from __future__ import annotations

import contextlib
import typing

import pytest
import torch
from torch.nn import functional as F

from hpo.training.config import ConfigError, TrainConfig, build_config
from hpo.training.device import AMP_DTYPES, grad_scaler_for
from hpo.training.loop import Session, batch_plan, train, train_one_epoch
from hpo.training.models import create_model
from hpo.training.optimizers import create_optimizer
from hpo.training.schedules import LRStepper, create_schedule

SMALL = {"dataset": "digits", "model": "mlp", "hidden": 32, "epochs": 2, "device": "cpu"}


def test_fp16_is_a_valid_amp_and_other_names_list_it() -> None:
    assert build_config({"amp": "fp16"}).amp == "fp16"
    with pytest.raises(ConfigError) as info:
        build_config({"amp": "fp8"})
    assert dict(info.value.problems) == {"amp": "must be one of none, bf16, fp16"}


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_on_cpu_amp_falls_back_to_float32_with_a_warning(amp: str) -> None:
    with pytest.warns(UserWarning, match=f"amp '{amp}' applies to CUDA only"):
        mixed = train({**SMALL, "amp": amp})
    plain = train({**SMALL, "amp": "none"})
    assert mixed.history == [
        {**epoch, "seconds": got["seconds"], "train_seconds": got["train_seconds"]}
        for epoch, got in zip(plain.history, mixed.history, strict=True)
    ]
    assert grad_scaler_for(amp, torch.device("cpu")) is None


def _session(scaler: torch.amp.GradScaler | None, steps: int, x_scale: float = 1.0) -> Session:
    torch.manual_seed(0)
    x, y = torch.randn(steps * 16, 6) * x_scale, torch.randint(0, 3, (steps * 16,))
    model = create_model(
        "mlp", in_shape=(6,), n_outputs=3, hidden=8, depth=1, activation="relu",
        dropout=0.0, norm="none", residual=False,
    )  # fmt: skip
    optimizer = create_optimizer("adam", model.parameters(), lr=1e-2)
    plan = batch_plan(x.shape[0], 8, 2)  # accumulation: two micro-batches per step
    schedule = create_schedule("constant", lr=1e-2, epochs=1, steps_per_epoch=len(plan))
    return Session(
        model=model,
        optimizer=optimizer,
        stepper=LRStepper(optimizer, schedule, len(plan)),
        loss_fn=F.cross_entropy,
        train_x=x,
        train_y=y,
        plan=plan,
        generator=torch.Generator().manual_seed(0),
        autocast=contextlib.nullcontext,
        clip=(1.0, 0.0),  # clipping reads the gradients: they must be unscaled by then
        scaler=scaler,
    )


def test_loss_scaling_in_the_loop_is_exact_in_float32() -> None:
    scaled = _session(torch.amp.GradScaler("cpu", init_scale=2.0**12), steps=6)
    plain = _session(None, steps=6)
    loss_scaled, loss_plain = train_one_epoch(scaled), train_one_epoch(plain)
    assert torch.equal(loss_scaled, loss_plain)
    for (name, a), (_, b) in zip(
        scaled.model.named_parameters(), plain.model.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name
    assert scaled.scaler is not None and scaled.scaler.get_scale() == 2.0**12  # no overflow


def test_an_overflowing_step_is_skipped_and_the_scale_halved() -> None:
    # Inputs of ~1e6 give a loss far above 2, and 2^127 × that overflows float32: the
    # gradients are inf, so no step is taken.
    session = _session(torch.amp.GradScaler("cpu", init_scale=2.0**127), steps=1, x_scale=1e6)
    before = [p.detach().clone() for p in session.model.parameters()]
    train_one_epoch(session)
    assert all(torch.equal(p, b) for p, b in zip(session.model.parameters(), before, strict=True))
    assert session.scaler is not None and session.scaler.get_scale() == 2.0**126
    assert not session.optimizer.state  # Adam never stepped: no moments were created


def test_every_amp_choice_but_none_has_an_autocast_dtype() -> None:
    choices = set(typing.get_args(TrainConfig.model_fields["amp"].annotation))
    assert choices == {"none", *AMP_DTYPES}
