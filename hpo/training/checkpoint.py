"""A training run's whole state, as one plain dict, and the hook the loop saves it through.

`capture` takes everything the next epoch depends on: the model's and optimizer's state
dicts, the schedule's position (optimizer steps taken, plus a plateau schedule's best
and patience counters), every random generator (torch's global one, which dropout draws
from; the augmentation/shuffling generator; mixup's NumPy generator), early stopping's
counters, the epoch, the metrics so far and the kept best weights. `restore` puts it
back into a freshly built `Session`, so the epochs after a restore are those an
uninterrupted run would have trained (bit-identical on CPU).

The loop knows nothing about where a state goes: the executor passes a `Checkpointer`
(save every `every` epochs, load the state to start from). With ``every = 0`` nothing is
saved. `to_bytes` / `from_bytes` are the one file format (``torch.save`` of the dict).

``every = "auto"`` (`SaveSchedule`) saves after an epoch unless that would bring the
time spent saving above `AUTO_SHARE` of the training time so far (the first epoch is
always saved: it measures what a save costs). An epoch of a second against a save of
milliseconds is saved every epoch; the digits MLP's 20 ms epochs, against a 2 ms save of
its 1 MB state, about every third or fourth. A crash then costs at most one epoch or
about 33 saves' time, whichever is longer.

A restore with a *changed* config (population-based training's explore step) keeps the
weights, optimizer moments and position but the new config's schedule: the stepper
writes the new lr into the optimizer before its next step (a plateau schedule keeps
the lr it had reduced to).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch

if TYPE_CHECKING:
    from hpo.training.loop import Session
    from hpo.training.regularization import EarlyStopping
    from hpo.training.schedules import Schedule

FORMAT = 1
# Plateau-style schedules keep these between epochs; everything else of a schedule is a
# pure function of the step.
_SCHEDULE_FIELDS = ("lr", "_best", "_bad_epochs")


# With ``every = "auto"``, the largest share of a trial's training time spent saving
# states, as the loop times a save. A save also slows the epoch after it (caches, the
# allocator) by a part nobody times: measured by `benchmarks/checkpoint_overhead.py`, a
# timed 5% cost the digits MLP about 6%, so the budget is 3% for about 5% in all.
AUTO_SHARE = 0.03

Every = int | Literal["auto"]


class Checkpointer(Protocol):
    """Where the loop's states go and come from (the executor's side of checkpoints)."""

    every: Every

    def load(self) -> dict[str, Any] | None:
        """The state to start from (a retry, a resumed or exploited trial), or None."""

    def save(self, state: dict[str, Any], *, epoch: int, best: bool) -> None:
        """Keep `state`, the state after `epoch`; `best`: that epoch is the best so far."""


class SaveSchedule:
    """Which epochs the loop saves after: every `every`-th, or with ``"auto"`` as often
    as a cost of at most `AUTO_SHARE` of training time allows (the module doc). The last
    epoch of a run is always saved; the loop asks `due` only for the others."""

    def __init__(self, every: Every) -> None:
        if every != "auto" and (isinstance(every, bool) or not isinstance(every, int) or every < 0):
            raise ValueError(f"checkpoint every {every!r}: an epoch count >= 0 or 'auto'")
        self.every = every
        self._last: float | None = None  # seconds the last save took
        self._saving = 0.0  # seconds spent saving so far
        self._training = 0.0  # seconds spent training so far

    @property
    def enabled(self) -> bool:
        return self.every != 0

    def due(self, epoch: int, seconds: float) -> bool:
        """Whether to save after `epoch`, an epoch that trained for `seconds`."""
        self._training += seconds
        if self.every == "auto":
            # One more save like the last one must keep saving within the share.
            return self._last is None or self._saving + self._last <= AUTO_SHARE * self._training
        return self.every > 0 and epoch % self.every == 0

    def saved(self, seconds: float) -> None:
        """A save just took `seconds`."""
        self._last = seconds
        self._saving += seconds


@dataclass
class MemoryCheckpointer:
    """Keeps states in memory: for tests, and for `hpo train` runs that only need the
    last state. `start` is a state to begin from."""

    every: Every = 1
    start: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.saved: list[tuple[int, bool, bytes]] = []

    def load(self) -> dict[str, Any] | None:
        return self.start

    def save(self, state: dict[str, Any], *, epoch: int, best: bool) -> None:
        self.saved.append((epoch, best, to_bytes(state)))


def _schedule_state(schedule: Schedule) -> list[dict[str, float]]:
    """The mutable fields of `schedule` and of the schedules it wraps (outermost first)."""
    states: list[dict[str, float]] = []
    node: Any = schedule
    while node is not None:
        states.append({k: getattr(node, k) for k in _SCHEDULE_FIELDS if hasattr(node, k)})
        node = getattr(node, "_inner", None)
    return states


def _load_schedule_state(schedule: Schedule, states: list[dict[str, float]]) -> None:
    node: Any = schedule
    for fields in states:
        if node is None:
            return
        for key, value in fields.items():
            if hasattr(node, key):
                setattr(node, key, value)
        node = getattr(node, "_inner", None)


def capture(
    session: Session,
    stopper: EarlyStopping,
    *,
    epoch: int,
    history: list[dict[str, float]],
    best: dict[str, float],
    kept: dict[str, torch.Tensor] | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    """The run's state after `epoch` (see the module doc). Tensors are shared with the live
    model, not copied: serialize (`to_bytes`) before the next optimizer step."""
    stepper = session.stepper
    rng: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "generator": session.generator.get_state(),
    }
    if torch.cuda.is_available() and session.train_x.is_cuda:
        rng["cuda"] = torch.cuda.get_rng_state(session.train_x.device)
    if session.mixup is not None:
        rng["numpy"] = session.mixup.rng.bit_generator.state
    return {
        "format": FORMAT,
        "epoch": epoch,
        "model": session.model.state_dict(),
        "optimizer": session.optimizer.state_dict(),
        "stepper": {
            "k": stepper._k,
            "last_lr": stepper.last_lr,
            "schedule": _schedule_state(stepper._schedule),
        },
        "early_stopping": {"best": stopper.best, "bad_epochs": stopper.bad_epochs},
        "rng": rng,
        "history": [dict(h) for h in history],
        "best": dict(best),
        "kept": kept,
        "config": config,
    }


def restore(session: Session, stopper: EarlyStopping, state: dict[str, Any]) -> None:
    """Load `state` into a session built from a config (the same one, or PBT's changed
    one); the caller takes `epoch`, `history`, `best` and `kept` from `state` itself."""
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not {FORMAT}")
    session.model.load_state_dict(state["model"])
    # The optimizer's moments come from the state, its hyperparameters from the config the
    # session was built with (PBT may have changed weight decay or momentum).
    settings = [
        {k: v for k, v in g.items() if k != "params"} for g in session.optimizer.param_groups
    ]
    session.optimizer.load_state_dict(state["optimizer"])
    for group, fresh in zip(session.optimizer.param_groups, settings, strict=True):
        group.update(fresh)
    stepper = session.stepper
    stepper._k = int(state["stepper"]["k"])
    stepper.last_lr = float(state["stepper"]["last_lr"])
    _load_schedule_state(stepper._schedule, state["stepper"]["schedule"])
    stopper.best = float(state["early_stopping"]["best"])
    stopper.bad_epochs = int(state["early_stopping"]["bad_epochs"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    session.generator.set_state(rng["generator"])
    if "cuda" in rng and session.train_x.is_cuda:
        torch.cuda.set_rng_state(rng["cuda"], session.train_x.device)
    if "numpy" in rng and session.mixup is not None:
        session.mixup.rng.bit_generator.state = rng["numpy"]


def to_bytes(state: dict[str, Any]) -> bytes:
    """`state` as the bytes of one checkpoint file."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A state read back from `to_bytes`' bytes (tensors on `map_location`)."""
    # Our own files: plain tensors, numbers, strings and NumPy's generator state (dicts).
    state: dict[str, Any] = torch.load(
        io.BytesIO(data), map_location=map_location, weights_only=False
    )
    return state


def delivered_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model a trial delivers from its last state: the kept best epoch's weights
    (``objective.value: best``), else the last epoch's."""
    kept: dict[str, torch.Tensor] | None = state.get("kept")
    return kept if kept is not None else state["model"]
