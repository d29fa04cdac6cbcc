"""Learning-rate schedules as closed-form functions of time, plus the stepper that applies them.

Time ``t`` is measured in fractional epochs at the *start* of an optimizer step:
``t = k / steps_per_epoch`` for the k-th step (0-based) of the run, and ``T = epochs`` is the
trial's full budget, so a trial stopped early followed exactly the schedule it would have
followed to the end. Each schedule is a pure ``lr_at(t)`` (α0 = the possibly rescaled `lr`):

=================  ============================================================
constant           α0
step               α0·γ^⌊t/step_size⌋ (exact at t = k·step_size, see `_decays`)
multistep          α0·γ^(number of milestones ≤ t)
exponential        α0·γ^t
inverse_time       α0/(1 + decay_rate·t)
cosine             min_lr + ½(α0 − min_lr)(1 + cos(πt/T))
cosine_restarts    the cosine above within each cycle (SGDR): the first lasts t0
                   epochs, each next one t_mult times longer; t restarts at 0
cyclic             triangular: base_lr → max_lr → base_lr over cycle_epochs
                   (ignores `lr`)
noam               α0·min(s/w, sqrt(w/s)) with s = t + 1/steps_per_epoch (the
                   end of the step) and w = warmup_epochs
plateau            α0·γ^(reductions); a reduction happens at the end of an epoch
                   once val_loss has not improved for more than `patience` epochs
=================  ============================================================

Warm-up (``warmup_epochs = w > 0``, every schedule but noam, which has its own): while
``t < w`` the step's lr is ``lr_at₀ · min(1, (t + 1/steps_per_epoch)/w)`` — the ramp is
evaluated at the *end* of the step, so the first step does not waste itself on lr 0 and
the last warm-up step reaches the schedule's starting value ``lr_at₀ = f(0)``. From
``t ≥ w`` on the schedule runs on ``t − w`` with horizon ``T − w``.

`gamma` defaults per schedule when left unset (None): 0.1 for step, multistep and
plateau (one decade per decay), 0.95 for exponential, which decays every epoch (0.1
there would divide lr by 10 each epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from torch.optim import Optimizer

from hpo.training.registry import lookup, pick_params


class Schedule:
    """lr as a function of ``t`` (epochs); stateless unless a subclass says otherwise."""

    def __init__(self, lr_at: Callable[[float], float]) -> None:
        self._lr_at = lr_at

    def __call__(self, t: float) -> float:
        return self._lr_at(t)

    def end_epoch(self, val_loss: float) -> None:
        """Hear the epoch's validation loss; only `plateau` reacts to it."""


class Plateau(Schedule):
    """α0·γ^n where n counts the epochs at which val_loss stalled for > `patience` epochs.

    Matches ``torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min", threshold=0)``.
    A NaN loss counts as no improvement.
    """

    def __init__(self, lr: float, gamma: float, patience: int) -> None:
        super().__init__(lambda _t: self.lr)
        self.lr = lr
        self._gamma = gamma
        self._patience = patience
        self._best = math.inf
        self._bad_epochs = 0

    def end_epoch(self, val_loss: float) -> None:
        if val_loss < self._best:
            self._best = val_loss
            self._bad_epochs = 0
            return
        self._bad_epochs += 1
        if self._bad_epochs > self._patience:
            self.lr *= self._gamma
            self._bad_epochs = 0


class Warmup(Schedule):
    """Linear warm-up over `warmup_epochs` in front of `inner` (see the module docstring)."""

    def __init__(self, inner: Schedule, warmup_epochs: float, step_epochs: float) -> None:
        super().__init__(self._lr)
        self._inner = inner
        self._w = warmup_epochs
        self._dt = step_epochs

    def _lr(self, t: float) -> float:
        if t < self._w:
            return self._inner(0.0) * min(1.0, (t + self._dt) / self._w)
        return self._inner(t - self._w)

    def end_epoch(self, val_loss: float) -> None:
        self._inner.end_epoch(val_loss)


def _constant(*, lr: float) -> Schedule:
    return Schedule(lambda t: lr)


#: `gamma` when the config leaves it unset, by schedule (others: `DEFAULT_GAMMA`).
GAMMA_DEFAULTS: dict[str, float] = {"exponential": 0.95}
DEFAULT_GAMMA = 0.1
# Relative slack for boundaries: t = k/steps_per_epoch and step_size are both rounded
# binary fractions, so t/step_size at an exact boundary can land a hair below the integer.
_BOUNDARY_TOLERANCE = 1e-9


def _decays(t: float, step_size: float) -> int:
    """⌊t/step_size⌋, counting a boundary t = j·step_size as reached despite float error
    (0.3/0.1 is 2.9999999999999996 in floats)."""
    return math.floor(t / step_size * (1 + _BOUNDARY_TOLERANCE))


def _step(*, lr: float, step_size: float, gamma: float | None) -> Schedule:
    g = DEFAULT_GAMMA if gamma is None else gamma
    return Schedule(lambda t: lr * g ** _decays(t, step_size))


def _multistep(*, lr: float, milestones: Sequence[float], gamma: float | None) -> Schedule:
    g = DEFAULT_GAMMA if gamma is None else gamma
    marks = sorted(milestones)
    return Schedule(lambda t: lr * g ** sum(t >= m * (1 - _BOUNDARY_TOLERANCE) for m in marks))


def _exponential(*, lr: float, gamma: float | None) -> Schedule:
    g = GAMMA_DEFAULTS["exponential"] if gamma is None else gamma
    return Schedule(lambda t: lr * g**t)


def _inverse_time(*, lr: float, decay_rate: float) -> Schedule:
    return Schedule(lambda t: lr / (1.0 + decay_rate * t))


def _cosine_at(t: float, period: float, lr: float, min_lr: float) -> float:
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t / period))


def _cosine(*, lr: float, horizon: float, min_lr: float) -> Schedule:
    return Schedule(lambda t: _cosine_at(t, horizon, lr, min_lr))


def _cosine_restarts(*, lr: float, t0: float, t_mult: float, min_lr: float) -> Schedule:
    def lr_at(t: float) -> float:
        # Walk the cycles rather than invert the geometric series; the summed boundaries
        # carry float error (1.6 + 2.4 + 3.6 > 7.6), so a boundary within tolerance counts
        # as reached and the restart is not one step late.
        start, length = 0.0, t0
        while t >= (start + length) * (1 - _BOUNDARY_TOLERANCE):
            start += length
            length *= t_mult
        return _cosine_at(max(0.0, t - start), length, lr, min_lr)

    return Schedule(lr_at)


def _cyclic(*, base_lr: float, max_lr: float, cycle_epochs: float) -> Schedule:
    def lr_at(t: float) -> float:
        phase = (t % cycle_epochs) / cycle_epochs
        return base_lr + (max_lr - base_lr) * (1.0 - abs(2.0 * phase - 1.0))

    return Schedule(lr_at)


def _noam(*, lr: float, warmup_epochs: float, step_epochs: float) -> Schedule:
    def lr_at(t: float) -> float:
        s = t + step_epochs
        return lr * min(s / warmup_epochs, math.sqrt(warmup_epochs / s))

    return Schedule(lr_at)


def _plateau(*, lr: float, gamma: float | None, patience: int) -> Schedule:
    return Plateau(lr, DEFAULT_GAMMA if gamma is None else gamma, patience)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "inverse_time": _inverse_time,
    "cosine": _cosine,
    "cosine_restarts": _cosine_restarts,
    "cyclic": _cyclic,
    "noam": _noam,
    "plateau": _plateau,
}
# Schedules that handle warm-up themselves rather than get the generic ramp in front.
_OWN_WARMUP = frozenset({"noam"})


def create_schedule(
    name: str,
    *,
    lr: float,
    epochs: float,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    **params: Any,
) -> Schedule:
    """Build schedule `name`; `ValueError` listing valid names if unknown.

    `params` may hold any hyperparameters (a whole config): each schedule takes the ones
    it needs (step_size, gamma, milestones, decay_rate, min_lr, t0, t_mult, base_lr,
    max_lr, cycle_epochs, patience) and ignores the rest.
    """
    builder = lookup(SCHEDULES, "schedule", name)
    step_epochs = 1.0 / steps_per_epoch
    values = {
        **params,
        "lr": lr,
        "horizon": epochs - warmup_epochs,
        "warmup_epochs": warmup_epochs,
        "step_epochs": step_epochs,
    }
    schedule = builder(**pick_params(builder, values))
    if warmup_epochs > 0 and name not in _OWN_WARMUP:
        schedule = Warmup(schedule, warmup_epochs, step_epochs)
    return schedule


class LRStepper:
    """Writes ``schedule(k / steps_per_epoch) × lr_mult`` into every param group before
    optimizer step k (``lr_mult``: the group's own factor, 1 when absent; see
    `hpo.training.optimizers.param_groups`).

    Call `step()` right before each ``optimizer.step()``; `last_lr` is the schedule's lr
    that step used (a group's lr is that times its ``lr_mult``).
    """

    def __init__(self, optimizer: Optimizer, schedule: Schedule, steps_per_epoch: int) -> None:
        self._groups = optimizer.param_groups
        self._schedule = schedule
        self._steps_per_epoch = steps_per_epoch
        self._k = 0
        self.last_lr = schedule(0.0)

    def step(self) -> float:
        """Set the lr of the next optimizer step and return it."""
        # k / steps_per_epoch (not a running sum) keeps t exact at epoch boundaries.
        lr = self._schedule(self._k / self._steps_per_epoch)
        for group in self._groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        self._k += 1
        self.last_lr = lr
        return lr

    def end_epoch(self, val_loss: float) -> None:
        """Pass the epoch's validation loss to stateful schedules (plateau)."""
        self._schedule.end_epoch(val_loss)


def scaled_lr(lr: float, batch_size: int, base_batch_size: int, rule: str) -> float:
    """`lr` rescaled by `rule` (none, linear, sqrt; see `LR_SCALING`) for `batch_size`, the
    *effective* batch of one optimizer step (``batch_size × grad_accum_steps``)."""
    return lr * lookup(LR_SCALING, "lr_scaling", rule)(batch_size / base_batch_size)


LR_SCALING: dict[str, Callable[[float], float]] = {
    "none": lambda ratio: 1.0,
    "linear": lambda ratio: ratio,
    "sqrt": math.sqrt,
}
