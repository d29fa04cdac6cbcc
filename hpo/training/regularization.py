"""Regularizers and guards the loop switches on by hyperparameter: each is skipped entirely
when off, so a run that does not ask for one pays nothing for it.

- `l1_weights` / `l1_penalty`: l1·Σ|w| over weight matrices and kernels (not biases, not
  normalization parameters, not embeddings); added to the loss, its gradient is l1·sign(w).
- `clip_gradients`: global-norm and per-value clipping.
- `EarlyStopping`: stop after `patience` epochs without improvement.
- `Augmenter`: batched image augmentation on the data's device (flip, shift, rotate, noise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F


def l1_weights(model: nn.Module) -> list[torch.Tensor]:
    """The parameters L1 applies to: the weights of Linear and Conv layers, of recurrent
    layers and of attention's input projections; not biases, norms or embeddings."""
    weights: list[torch.Tensor] = []
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.modules.conv._ConvNd):
            weights.append(m.weight)
        elif isinstance(m, nn.RNNBase | nn.MultiheadAttention):
            weights += [p for name, p in m.named_parameters(recurse=False) if "weight" in name]
    return weights


def l1_penalty(weights: Sequence[torch.Tensor], l1: float) -> torch.Tensor:
    """l1·Σ|w| over `weights`, a scalar whose gradient w.r.t. each w is l1·sign(w)."""
    return l1 * torch.stack([w.abs().sum() for w in weights]).sum()


def clip_gradients(
    params: Iterable[torch.Tensor] | list[torch.Tensor], max_norm: float, max_value: float
) -> None:
    """Clip gradients in place: each entry to ±`max_value`, then the global norm to `max_norm`.

    A zero limit means that clipping is off.
    """
    params = list(params)
    if max_value > 0:
        torch.nn.utils.clip_grad_value_(params, max_value)
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


class EarlyStopping:
    """Decides, once per epoch, whether training should stop.

    A value improves when it beats the best so far by more than `min_delta` (lower for
    mode "min", higher for "max"); NaN never improves. `update` returns True once
    `patience` consecutive epochs passed without improvement; patience 0 never stops.
    """

    def __init__(self, patience: int, min_delta: float, mode: Literal["min", "max"]) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self._sign = 1.0 if mode == "min" else -1.0
        self.best = math.inf
        self.bad_epochs = 0

    def update(self, value: float) -> bool:
        """Record this epoch's value; True if training should stop now."""
        signed = self._sign * value
        if signed < self.best - self.min_delta:
            self.best = signed
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return 0 < self.patience <= self.bad_epochs


class Augmenter:
    """Random flips, shifts, rotations and Gaussian noise for a batch (N, C, H, W).

    Draws from `generator` (on the batch's device), so a seeded run is reproducible.
    Shifts are whole pixels and rotations up to ±`rotate` degrees, both through one
    affine resampling with zero padding; flips are horizontal.
    """

    def __init__(
        self,
        *,
        flip: bool,
        shift: int,
        rotate: float,
        noise: float,
        generator: torch.Generator,
    ) -> None:
        self.flip = flip
        self.shift = shift
        self.rotate = rotate
        self.noise = noise
        self.generator = generator

    @property
    def active(self) -> bool:
        """Whether any augmentation is on (the loop skips calling it otherwise)."""
        return self.flip or self.shift > 0 or self.rotate > 0 or self.noise > 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, g = x.shape[0], self.generator
        if self.flip:
            mask = torch.rand(n, device=x.device, generator=g) < 0.5
            x = torch.where(mask.view(n, 1, 1, 1), x.flip(-1), x)
        if self.shift > 0 or self.rotate > 0:
            x = self._affine(x)
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, device=x.device, generator=g, dtype=x.dtype)
        return x

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        n, g, dev = x.shape[0], self.generator, x.device
        angles = (torch.rand(n, device=dev, generator=g) * 2 - 1) * math.radians(self.rotate)
        shifts = torch.randint(-self.shift, self.shift + 1, (n, 2), device=dev, generator=g)
        return affine(x, angles, shifts, smooth=self.rotate > 0)


def affine(
    x: torch.Tensor, angles: torch.Tensor, shifts: torch.Tensor, *, smooth: bool = True
) -> torch.Tensor:
    """Rotate each image of `x` (N, C, H, W) by `angles[i]` radians about its centre
    (counter-clockwise as displayed, row 0 on top: +90° is ``torch.rot90(x, 1, (-2, -1))``)
    and move its content by `shifts[i] = (columns right, rows down)` whole pixels, padding
    with zeros. Bilinear resampling when `smooth`, else nearest (exact for pure shifts).
    """
    n, _, h, w = x.shape
    cos, sin = angles.cos(), angles.sin()
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    # affine_grid works in [-1, 1] coordinates: one pixel is 2/size; sampling at
    # x - d moves the content by +d.
    theta[:, 0, 2] = -2.0 * shifts[:, 0] / w
    theta[:, 1, 2] = -2.0 * shifts[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    mode = "bilinear" if smooth else "nearest"
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
