"""Input preprocessing fitted on the training split only and applied to both splits.

Each preprocessor is fitted on a 2-D matrix (samples × features). For images (N, C, H, W),
standardize and minmax are per *channel* (every pixel of a sample is an observation of
its channel, so one affine map per channel: a pixel that is nearly constant over the
data, like a digit's corner, is not blown up); whitening flattens each image and works
per pixel, as a covariance over all pixels must. `fit_preprocessor` handles the shapes.
Statistics use the population normalization (divide by n), so after fitting, the
*training* split has exactly (per feature, or per channel for images):

- standardize: mean 0, std 1 per feature (constant features are only centred);
- minmax: min 0, max 1 per feature (constant features map to 0);
- pca_whiten: covariance I in the rotated (principal-component) basis;
- zca_whiten: covariance I in the original basis (the whitening closest to the data).

Whitening adds `whiten_eps` to each eigenvalue, so directions with variance below it
are damped rather than blown up.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from hpo.training.registry import lookup

Transform = Callable[[torch.Tensor], torch.Tensor]
Fitter = Callable[..., Transform]


def _none(x: torch.Tensor) -> Transform:
    return lambda z: z


def _standardize(x: torch.Tensor) -> Transform:
    mean = x.mean(0)
    std = x.std(0, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return lambda z: (z - mean) / std


def _minmax(x: torch.Tensor) -> Transform:
    low = x.amin(0)
    span = x.amax(0) - low
    span = torch.where(span > 0, span, torch.ones_like(span))
    return lambda z: (z - low) / span


def _eigen(x: torch.Tensor, whiten_eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # float64 for the decomposition: float32 loses the small eigenvalues whitening divides by.
    x64 = x.double()
    mean = x64.mean(0)
    centred = x64 - mean
    cov = centred.T @ centred / x.shape[0]
    eigvals, eigvecs = torch.linalg.eigh(cov)
    scale = (eigvals.clamp(min=0) + whiten_eps).rsqrt()
    scale = torch.where(torch.isfinite(scale), scale, torch.zeros_like(scale))
    return mean, eigvecs, scale


def _pca_whiten(x: torch.Tensor, whiten_eps: float = 1e-5) -> Transform:
    mean, u, scale = _eigen(x, whiten_eps)
    w = (u * scale).to(x.dtype)
    m = mean.to(x.dtype)
    return lambda z: (z - m) @ w


def _zca_whiten(x: torch.Tensor, whiten_eps: float = 1e-5) -> Transform:
    mean, u, scale = _eigen(x, whiten_eps)
    w = ((u * scale) @ u.T).to(x.dtype)
    m = mean.to(x.dtype)
    return lambda z: (z - m) @ w


PREPROCESSORS: dict[str, Fitter] = {
    "none": _none,
    "standardize": _standardize,
    "minmax": _minmax,
    "pca_whiten": _pca_whiten,
    "zca_whiten": _zca_whiten,
}


def create_preprocessor(name: str, train_x: torch.Tensor, **params: float) -> Transform:
    """Fit preprocessor `name` on the 2-D `train_x` and return the transform it learned.

    `params` may hold `whiten_eps` (whitening only). `ValueError` listing the valid names
    if `name` is unknown.
    """
    fitter = lookup(PREPROCESSORS, "preprocess", name)
    if name.endswith("_whiten"):
        return fitter(train_x, **params)
    return fitter(train_x)


# Preprocessors that act per channel on images rather than per pixel.
_PER_CHANNEL = frozenset({"standardize", "minmax"})


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    # (N, C, H, W) → (N·H·W, C): each pixel an observation of its channel.
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def fit_preprocessor(name: str, train_x: torch.Tensor, whiten_eps: float = 1e-5) -> Transform:
    """Fit `name` on `train_x` (samples first; images per channel for standardize and
    minmax, otherwise flattened per sample) and return a transform for tensors of the
    same per-sample shape."""
    if name == "none":
        return _none(train_x)
    if train_x.ndim == 4 and name in _PER_CHANNEL:
        per_channel = create_preprocessor(name, _channels_last(train_x))

        def transform(z: torch.Tensor) -> torch.Tensor:
            n, c, h, w = z.shape
            return per_channel(_channels_last(z)).reshape(n, h, w, c).permute(0, 3, 1, 2)

        return transform
    flat = create_preprocessor(name, train_x.flatten(1), whiten_eps=whiten_eps)
    return lambda z: flat(z.flatten(1)).reshape(z.shape)


def preprocess_splits(
    name: str, train_x: torch.Tensor, val_x: torch.Tensor, whiten_eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit `name` on `train_x` and apply it to both splits."""
    transform = fit_preprocessor(name, train_x, whiten_eps)
    return transform(train_x), transform(val_x)
