"""Every schedule's lr trace equals its closed form, written out here, at every step."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from hpo.training.config import build_config
from hpo.training.loop import train
from hpo.training.schedules import LRStepper, create_schedule, scaled_lr

LR = 0.1
EPOCHS = 12
SPE = 5  # steps per epoch
STEPS = EPOCHS * SPE


def trace(name: str, warmup: float = 0.0, **params: object) -> list[float]:
    """param_group['lr'] seen by each optimizer step of a run of STEPS steps."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=123.0)
    schedule = create_schedule(
        name, lr=LR, epochs=EPOCHS, steps_per_epoch=SPE, warmup_epochs=warmup, **params
    )
    stepper = LRStepper(optimizer, schedule, SPE)
    seen = []
    for _ in range(STEPS):
        stepper.step()
        seen.append(optimizer.param_groups[0]["lr"])
    return seen


def cos_curve(t: float, period: float, hi: float, lo: float) -> float:
    return lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * t / period))


def expected(k: int, f, warmup: float = 0.0) -> float:  # type: ignore[no-untyped-def]
    """Generic warm-up in front of f: ramp to f(0) at the end of each step, then f(t − w)."""
    t = k / SPE
    if t < warmup:
        return f(0.0) * min(1.0, (k + 1) / (SPE * warmup))
    return f(t - warmup)


def sgdr(t: float, t0: float, mult: float, lo: float) -> float:
    """SGDR in closed form (Loshchilov & Hutter): cycle i starts at the geometric sum
    S_i = t0·(mult^i − 1)/(mult − 1) (t0·i when mult = 1), so the cycle holding t is
    i = ⌊log_mult(1 + t(mult − 1)/t0)⌋; no walk over the cycles."""
    if mult == 1:
        i = math.floor(t / t0)
        start = t0 * i
    else:
        i = math.floor(math.log(1 + t * (mult - 1) / t0, mult) + 1e-12)
        start = t0 * (mult**i - 1) / (mult - 1)
    return cos_curve(t - start, t0 * mult**i, LR, lo)


CASES = {
    "constant": ({}, lambda t: LR),
    "step": ({"step_size": 3.0, "gamma": 0.5}, lambda t: LR * 0.5 ** math.floor(t / 3)),
    "multistep": (
        {"milestones": (7.0, 2.0), "gamma": 0.3},
        lambda t: LR * (1 if t < 2 else 0.3 if t < 7 else 0.09),
    ),
    "exponential": ({"gamma": 0.8}, lambda t: LR * 0.8**t),
    "inverse_time": ({"decay_rate": 0.5}, lambda t: LR / (1 + 0.5 * t)),
    "cyclic": (
        {"base_lr": 0.01, "max_lr": 0.05, "cycle_epochs": 4.0},
        lambda t: 0.01 + 0.04 * (1 - abs(2 * ((t % 4) / 4) - 1)),
    ),
    "cosine_restarts": (
        {"t0": 2.0, "t_mult": 2.0, "min_lr": 0.001},
        lambda t: sgdr(t, 2.0, 2.0, 0.001),
    ),
    "cosine_restarts:t_mult=1.5": (
        {"t0": 1.6, "t_mult": 1.5, "min_lr": 0.0},
        lambda t: sgdr(t, 1.6, 1.5, 0.0),
    ),
    "cosine_restarts:t_mult=1": (
        {"t0": 3.0, "t_mult": 1.0, "min_lr": 0.002},
        lambda t: sgdr(t, 3.0, 1.0, 0.002),
    ),
}


# 1.3 and 0.7 end mid-step (the ramp is capped at 1); 0.7 and 1.0 are short warm-ups.
@pytest.mark.parametrize("warmup", [0.0, 2.0, 1.4, 1.3, 1.0, 0.7])
@pytest.mark.parametrize("name", sorted(CASES))
def test_trace_matches_closed_form(name: str, warmup: float) -> None:
    params, f = CASES[name]
    got = trace(name.partition(":")[0], warmup, **params)
    want = [expected(k, f, warmup) for k in range(STEPS)]
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("warmup", [0.0, 2.0])
def test_cosine_spans_the_budget_after_warmup(warmup: float) -> None:
    got = trace("cosine", warmup, min_lr=0.01)
    horizon = EPOCHS - warmup
    want = [expected(k, lambda t: cos_curve(t, horizon, LR, 0.01), warmup) for k in range(STEPS)]
    assert got == pytest.approx(want, rel=1e-12)
    assert got[0] == pytest.approx(LR / (SPE * warmup) if warmup else LR)


def test_sgdr_restarts_at_cycle_boundaries() -> None:
    got = trace("cosine_restarts", t0=2.0, t_mult=2.0, min_lr=0.0)
    # Restarts at epochs 2 and 6 (2 + 4): lr jumps back to α0 at steps 10 and 30.
    for restart in (0, 2 * SPE, 6 * SPE):
        assert got[restart] == pytest.approx(LR)
        if restart:
            assert got[restart - 1] < 0.05 * LR


def test_noam_uses_warmup_as_its_own() -> None:
    w = 2.0
    got = trace("noam", w)
    want = [LR * min(((k + 1) / SPE) / w, math.sqrt(w / ((k + 1) / SPE))) for k in range(STEPS)]
    assert got == pytest.approx(want, rel=1e-12)
    assert max(got) == pytest.approx(LR)


def test_plateau_reduces_after_patience_epochs_without_improvement() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    stepper = LRStepper(
        optimizer,
        create_schedule("plateau", lr=LR, epochs=10, steps_per_epoch=1, gamma=0.5, patience=2),
        1,
    )
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9, 0.9]
    # ReduceLROnPlateau semantics: reduce once more than `patience` bad epochs are counted.
    lrs = []
    for loss in losses:
        lrs.append(stepper.step())
        stepper.end_epoch(loss)
    assert lrs == pytest.approx([LR] * 5 + [LR / 2] * 4 + [LR / 4])


def test_real_run_reports_the_formula_lr() -> None:
    # digits: 1438 training samples, batch 128 → 12 steps per epoch.
    seen: list[float] = []
    train(
        {
            "epochs": 4,
            "batch_size": 128,
            "hidden": 16,
            "depth": 1,
            "lr": 0.1,
            "optimizer": "sgd",
            "schedule": "step",
            "step_size": 1.0,
            "gamma": 0.5,
            "warmup_epochs": 1.0,
        },
        report=lambda m: seen.append(m["lr"]),
    )
    spe = math.ceil(1438 / 128)
    last_steps = [(e + 1) * spe - 1 for e in range(4)]
    want = [0.1 if k / spe < 1 else 0.1 * 0.5 ** math.floor(k / spe - 1) for k in last_steps]
    assert seen == pytest.approx(want)


@pytest.mark.parametrize(("rule", "factor"), [("none", 1.0), ("linear", 4.0), ("sqrt", 2.0)])
def test_lr_scaling(rule: str, factor: float) -> None:
    assert scaled_lr(0.1, 128, 32, rule) == pytest.approx(0.1 * factor)


def test_unknown_schedule_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="must be one of constant, step"):
        create_schedule("linear", lr=0.1, epochs=3, steps_per_epoch=2)


@pytest.mark.parametrize(("step_size", "spe"), [("0.1", 10), ("0.3", 10), ("0.7", 10), ("1.1", 20)])
def test_step_decays_exactly_at_fractional_boundaries(step_size: str, spe: int) -> None:
    # The decay count at t = k/spe is ⌊t/step_size⌋ with step_size the decimal the user
    # wrote, computed in exact rational arithmetic (t = j·step_size decays at that step).
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = create_schedule(
        "step", lr=1.0, epochs=4, steps_per_epoch=spe, step_size=float(step_size), gamma=0.5
    )
    stepper = LRStepper(optimizer, schedule, spe)
    for k in range(4 * spe):
        decays = math.floor(Fraction(k, spe) / Fraction(step_size))
        assert stepper.step() == 0.5**decays, (k, decays)


@pytest.mark.parametrize(
    ("name", "gamma_at_one_epoch"),
    [("exponential", 0.95), ("step", 0.1), ("multistep", 0.1)],
)
def test_gamma_defaults_per_schedule(name: str, gamma_at_one_epoch: float) -> None:
    cfg = build_config({"schedule": name, "lr": 1.0, "step_size": 1.0, "milestones": [1.0]})
    schedule = create_schedule(name, steps_per_epoch=1, **cfg.model_dump())
    assert schedule(1.0) == pytest.approx(gamma_at_one_epoch)


def test_plateau_gamma_defaults_to_a_tenth() -> None:
    cfg = build_config({"schedule": "plateau", "lr": 1.0, "patience": 0})
    schedule = create_schedule("plateau", steps_per_epoch=1, **cfg.model_dump())
    schedule.end_epoch(1.0)
    schedule.end_epoch(1.0)  # no improvement, patience 0: one reduction
    assert schedule(2.0) == pytest.approx(0.1)


def test_lr_scaling_uses_the_effective_batch() -> None:
    # 16 × 4 accumulated = 64 samples per step = base 64: the lr stays as written.
    seen: list[float] = []
    config = {
        "epochs": 1,
        "hidden": 8,
        "depth": 1,
        "lr": 0.01,
        "lr_scaling": "linear",
        "batch_size": 16,
        "grad_accum_steps": 4,
        "base_batch_size": 64,
    }
    train(config, report=lambda m: seen.append(m["lr"]))
    assert seen == [pytest.approx(0.01)]
    seen.clear()
    train({**config, "lr_scaling": "sqrt", "grad_accum_steps": 16}, lambda m: seen.append(m["lr"]))
    assert seen == [pytest.approx(0.02)]


@pytest.mark.parametrize("patience", [0, 1, 3])
@pytest.mark.parametrize("warmup", [0.0, 1.0])
def test_plateau_matches_torchs_reduce_on_plateau(patience: int, warmup: float) -> None:
    # torch's ReduceLROnPlateau (threshold 0, mode min) is the independent reference;
    # long flat stretches check the count after a reduction, and warm-up must pass
    # every loss on to the schedule it wraps.
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.85, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7]
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(
        ref_opt, mode="min", factor=0.5, patience=patience, threshold=0.0
    )
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    schedule = create_schedule(
        "plateau",
        lr=LR,
        epochs=len(losses) + 1,
        steps_per_epoch=1,
        warmup_epochs=warmup,
        gamma=0.5,
        patience=patience,
    )
    stepper = LRStepper(optimizer, schedule, 1)
    assert stepper.last_lr == schedule(0.0)
    for epoch, loss in enumerate(losses):
        got = stepper.step()
        if epoch >= warmup:
            assert got == pytest.approx(ref_opt.param_groups[0]["lr"]), epoch
        stepper.end_epoch(loss)
        ref.step(loss)
