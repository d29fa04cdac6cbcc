"""Where a run executes and in which precision.

`resolve_device` maps the `device` hyperparameter to a torch device; `autocast_for`
gives the context every forward pass runs in (bf16 autocast on CUDA when `amp: bf16`,
otherwise a no-op: bf16 autocast on CPU is slower than float32, so it is ignored there
with a warning rather than silently slowing a trial down).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` → CUDA when available, else CPU; `cuda` without a GPU is a `ValueError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def autocast_for(amp: str, device: torch.device) -> Callable[[], AbstractContextManager[object]]:
    """A factory of the context manager each forward pass enters."""
    if amp == "bf16":
        if device.type == "cuda":
            return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
        warnings.warn("amp 'bf16' applies to CUDA only; running in float32 on CPU", stacklevel=3)
    return contextlib.nullcontext
