"""Regularizers and guards the loop switches on by hyperparameter: each is skipped entirely
when off, so a run that does not ask for one pays nothing for it.

- `l1_weights` / `l1_penalty`: l1·Σ|w| over weight matrices and kernels (not biases, not
  normalization parameters, not embeddings); added to the loss, its gradient is l1·sign(w).
- `clip_gradients`: global-norm and per-value clipping.
- `EarlyStopping`: stop after `patience` epochs without improvement.
- `Augmenter`: batched image augmentation on the data's device (horizontal and vertical
  flips, zoom, shift, rotate, cutout, noise).
- `Mixup`: convex combinations of pairs of samples and of their losses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
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
    """Random flips, zooms, shifts, rotations, cutout and Gaussian noise for a batch
    (N, C, H, W), in that order.

    Draws from `generator` (on the batch's device), so a seeded run is reproducible.
    Flips are horizontal (`flip`) and vertical (`vflip`), each with probability ½. Zoom
    is a random resized crop: a square-aspect window of s·H × s·W, s ~ U(1 − `zoom`, 1),
    anywhere inside the image, resized back to H × W (bilinear, see `zoom`). Shifts are
    whole pixels and rotations up to ±`rotate` degrees, both through one affine
    resampling with zero padding. Cutout zeroes one `cutout` × `cutout` square per image
    around a uniformly drawn centre, clipped at the border (see `cutout`).
    """

    def __init__(
        self,
        *,
        flip: bool,
        shift: int,
        rotate: float,
        noise: float,
        generator: torch.Generator,
        vflip: bool = False,
        zoom: float = 0.0,
        cutout: int = 0,
    ) -> None:
        self.flip = flip
        self.vflip = vflip
        self.zoom = zoom
        self.shift = shift
        self.rotate = rotate
        self.cutout = cutout
        self.noise = noise
        self.generator = generator

    @property
    def active(self) -> bool:
        """Whether any augmentation is on (the loop skips calling it otherwise)."""
        return (
            self.flip
            or self.vflip
            or self.zoom > 0
            or self.shift > 0
            or self.rotate > 0
            or self.cutout > 0
            or self.noise > 0
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, g, dev = x.shape[0], self.generator, x.device
        if self.flip:
            mask = torch.rand(n, device=dev, generator=g) < 0.5
            x = torch.where(mask.view(n, 1, 1, 1), x.flip(-1), x)
        if self.vflip:
            mask = torch.rand(n, device=dev, generator=g) < 0.5
            x = torch.where(mask.view(n, 1, 1, 1), x.flip(-2), x)
        if self.zoom > 0:
            scales = 1 - self.zoom * torch.rand(n, device=dev, generator=g)
            # The window's centre, in [-1, 1] units, keeps the whole window inside.
            offsets = (torch.rand(n, 2, device=dev, generator=g) * 2 - 1) * (1 - scales)[:, None]
            x = zoom(x, scales, offsets)
        if self.shift > 0 or self.rotate > 0:
            x = self._affine(x)
        if self.cutout > 0:
            h, w = x.shape[-2:]
            rows = torch.randint(0, h, (n,), device=dev, generator=g)
            cols = torch.randint(0, w, (n,), device=dev, generator=g)
            x = cutout(x, torch.stack([rows, cols], dim=1), self.cutout)
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, device=x.device, generator=g, dtype=x.dtype)
        return x

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        n, g, dev = x.shape[0], self.generator, x.device
        angles = (torch.rand(n, device=dev, generator=g) * 2 - 1) * math.radians(self.rotate)
        shifts = torch.randint(-self.shift, self.shift + 1, (n, 2), device=dev, generator=g)
        return affine(x, angles, shifts, smooth=self.rotate > 0)


def zoom(x: torch.Tensor, scales: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Crop from each image of `x` (N, C, H, W) the window of `scales[i]`·H × `scales[i]`·W
    centred at `offsets[i] = (x, y)` (in [-1, 1] image units: 0 is the centre, ±1 the
    edges) and resize it to H × W by bilinear resampling (border pixels repeat past the
    edge). Output pixel (r, c) reads input column ((s·(2c + 1 − W)/W + x_off + 1)·W − 1)/2
    and the matching row."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = scales
    theta[:, 1, 1] = scales
    theta[:, :, 2] = offsets.to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def cutout(x: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """Zero, in each image of `x` (N, C, H, W) and every channel, the rows
    ``r − size//2 … r − size//2 + size − 1`` × the same columns around `centres[i] = (r, c)`,
    clipped at the border (DeVries & Taylor 2017)."""
    h, w = x.shape[-2:]
    start = centres - size // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= start[:, :1]) & (rows < start[:, :1] + size)  # (N, H)
    in_cols = (cols >= start[:, 1:]) & (cols < start[:, 1:] + size)  # (N, W)
    hole = in_rows[:, :, None] & in_cols[:, None, :]
    return x.masked_fill(hole[:, None], 0.0)


class Mixup:
    """Mixup (Zhang et al. 2018): each batch is replaced by λ·x + (1 − λ)·x[perm], with one
    λ ~ Beta(alpha, alpha) per batch and a random pairing `perm`, and trained on
    λ·loss(out, y) + (1 − λ)·loss(out, y[perm]) (for cross-entropy, the loss against the
    mixed one-hot targets; for MSE, against the mixed targets up to a constant).

    λ is drawn from `rng` (NumPy: torch has no seeded Beta sampler) and the pairing from
    `generator`, so a seeded run is reproducible.
    """

    def __init__(self, alpha: float, generator: torch.Generator, rng: np.random.Generator):
        self.alpha = alpha
        self.generator = generator
        self.rng = rng

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(mixed inputs, the partners' targets, λ)."""
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.randperm(x.shape[0], device=x.device, generator=self.generator)
        return lam * x + (1 - lam) * x[perm], y[perm], lam


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
