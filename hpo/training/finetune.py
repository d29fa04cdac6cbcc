"""Pre-training → fine-tuning: start from stored weights, freeze layers, a head's own lr.

Three knobs, applied in this order right after the model is built and initialized:

- `init_from` (see `hpo.training.pretrained` for its forms): every parameter and buffer
  of the stored ``state_dict`` whose name and shape match the model's is copied in
  exactly; the rest keep the core's initialization (`init`). A new head for another
  number of classes is the typical unmatched layer. Weights that match nothing at all are
  an error, since the run would silently start from scratch.
- `freeze`: parameters whose dotted name equals a listed prefix or starts with it
  followed by a dot (``blocks.0`` freezes ``blocks.0.0.weight``, not ``blocks.01``) get
  ``requires_grad = False``: no gradient, no optimizer state, no weight decay, no L1.
  Normalization statistics (BatchNorm's running mean and variance) are buffers, not
  parameters: they keep following the data in training mode.
- `lr_head_mult`: the head's parameters train at ``lr × lr_head_mult`` at every step of
  the schedule (warm-up and decay included), the rest at ``lr``. The head is the
  top-level module named ``head`` when the model has one (every built-in model: mlp,
  cnn, rnn and transformer end in a ``head`` Linear), else the last ``nn.Linear`` in the
  model's module order (``model.named_modules()``).

Every problem is raised as a `ConfigError` naming the field.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hpo.training.config import ConfigError
from hpo.training.pretrained import WeightsNotAvailable, resolve_init_from


@dataclass(frozen=True)
class LoadReport:
    """What `load_matching` did: names copied from the file, and the model's names left
    as initialized (absent from the file, or of another shape)."""

    loaded: tuple[str, ...]
    fresh: tuple[str, ...]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` stored at `path`: the file's own mapping of names to tensors, or
    its ``state_dict`` entry. Loaded with ``weights_only=True``, so a file cannot run
    code. `ConfigError` on ``init_from`` for anything else."""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            [("init_from", f"{str(path)!r} is not a torch weights file ({reason})")]
        ) from None
    if isinstance(stored, Mapping) and "state_dict" in stored:
        stored = stored["state_dict"]
    if (
        not isinstance(stored, Mapping)
        or not stored
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in stored.items())
    ):
        raise ConfigError(
            [
                (
                    "init_from",
                    f"{str(path)!r} holds no state_dict (expected a mapping of parameter "
                    "names to tensors, or a dict with a 'state_dict' key)",
                )
            ]
        )
    return dict(stored)


def load_matching(model: nn.Module, stored: Mapping[str, torch.Tensor]) -> LoadReport:
    """Copy every entry of `stored` whose name and shape match the model's state into it
    (exact values, cast to the model's dtype and device); leave the rest untouched."""
    own = model.state_dict()
    matched = {
        name: tensor
        for name, tensor in stored.items()
        if name in own and own[name].shape == tensor.shape
    }
    if not matched:
        sample = ", ".join(list(own)[:4])
        raise ConfigError(
            [
                (
                    "init_from",
                    "no stored weight matches the model by name and shape "
                    f"(the model's names start: {sample}, …); was it saved from another model?",
                )
            ]
        )
    model.load_state_dict(matched, strict=False)
    return LoadReport(
        loaded=tuple(name for name in own if name in matched),
        fresh=tuple(name for name in own if name not in matched),
    )


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def freeze(model: nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Stop training the parameters under each prefix (see the module doc); returns the
    frozen names. `ConfigError` on ``freeze`` for a prefix matching no parameter, or one
    that leaves nothing to train."""
    names = [name for name, _ in model.named_parameters()]
    unmatched = [p for p in prefixes if not any(_under(n, p) for n in names)]
    if unmatched:
        top = sorted({n.split(".")[0] for n in names})
        raise ConfigError(
            ("freeze", f"{p!r} matches no parameter of the model (top-level: {', '.join(top)})")
            for p in unmatched
        )
    frozen = []
    for name, param in model.named_parameters():
        if any(_under(name, p) for p in prefixes):
            param.requires_grad_(False)
            frozen.append(name)
    if len(frozen) == len(names):
        raise ConfigError([("freeze", "freezes every parameter: nothing is left to train")])
    return frozen


def head_module(model: nn.Module) -> nn.Module | None:
    """The model's head: its top-level ``head`` module, else its last ``nn.Linear``
    (None if it has neither)."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def head_parameters(model: nn.Module) -> set[int]:
    """The ids of the head's parameters (see `head_module`); `ConfigError` on
    ``lr_head_mult`` when the model has no head."""
    head = head_module(model)
    if head is None:
        raise ConfigError(
            [("lr_head_mult", "the model has no module named 'head' and no nn.Linear layer")]
        )
    return {id(p) for p in head.parameters()}


def start_from(
    model: nn.Module,
    init_from: str | None,
    prefixes: Sequence[str],
    database_url: str | None = None,
) -> LoadReport | None:
    """Load `init_from` into `model` (None: nothing to load), then `freeze` `prefixes`."""
    report = None
    if init_from is not None:
        try:
            path = resolve_init_from(init_from, database_url)
        except (FileNotFoundError, WeightsNotAvailable, ValueError) as exc:
            raise ConfigError([("init_from", str(exc))]) from None
        report = load_matching(model, read_state_dict(path))
    if prefixes:
        freeze(model, prefixes)
    return report
