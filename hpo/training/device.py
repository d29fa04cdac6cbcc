"""Where a run executes and in which precision.

`resolve_device` maps the `device` hyperparameter to a torch device; `autocast_for`
gives the context every forward pass runs in (autocast to bfloat16 or float16 on CUDA
when `amp` is bf16 or fp16, otherwise a no-op); `grad_scaler_for` gives the loss scaler
fp16 needs on CUDA (float16's narrow exponent flushes small gradients to zero unless the
loss is scaled up first; bfloat16 has float32's exponent and needs none).

On CPU both precisions are ignored with a warning rather than silently slowing a trial
down. torch 2.13's CPU autocast accepts float16, but has few float16 kernels: measured
with `benchmarks/amp_cpu.py` (2026-11, AMD EPYC with avx512_bf16, one thread), a
training step of the core's MLP took 5.0× and of its Transformer 4.8× as long as in
float32 (bf16: 1.1× and 0.9×). Refusing fp16 at load is not possible, since `device:
auto` is only resolved where the trial runs; a spec with `amp: fp16` is meant for GPUs.
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


AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_for(amp: str, device: torch.device) -> Callable[[], AbstractContextManager[object]]:
    """A factory of the context manager each forward pass enters."""
    dtype = AMP_DTYPES.get(amp)
    if dtype is not None:
        if device.type == "cuda":
            return lambda: torch.autocast("cuda", dtype=dtype)
        warnings.warn(f"amp '{amp}' applies to CUDA only; running in float32 on CPU", stacklevel=3)
    return contextlib.nullcontext


def grad_scaler_for(amp: str, device: torch.device) -> torch.amp.GradScaler | None:
    """The loss scaler of `amp: fp16` on CUDA (dynamic: the scale halves on a step with
    inf/NaN gradients, which is then skipped, and doubles after 2000 clean steps); None
    otherwise, so the loop skips scaling entirely."""
    if amp == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None
