"""Models by name (`mlp`, `cnn`) and activations by name.

Both models honour `dropout`, `norm` (none | batch | layer) and `activation`; `init` is
applied afterwards by `hpo.training.init`. Outputs are logits (classification) or one
value per sample (regression, squeezed by the loop).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from hpo.training.registry import lookup, pick_params

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


def create_activation(name: str) -> nn.Module:
    """A fresh activation module; `ValueError` listing the valid names if unknown."""
    return lookup(ACTIVATIONS, "activation", name)()


def _present(*modules: nn.Module | None) -> list[nn.Module]:
    # Layers that are off are left out rather than made Identity: every module call costs
    # Python overhead on each step, which matters for the small models searched here.
    return [m for m in modules if m is not None]


def _norm_1d(norm: str, width: int) -> nn.Module | None:
    return {"none": None, "batch": nn.BatchNorm1d(width), "layer": nn.LayerNorm(width)}[norm]


def _norm_2d(norm: str, channels: int) -> nn.Module | None:
    # "layer" on feature maps normalizes over (C, H, W) per sample: GroupNorm with one group.
    norms = {
        "none": None,
        "batch": nn.BatchNorm2d(channels),
        "layer": nn.GroupNorm(1, channels),
    }
    return norms[norm]


class MLP(nn.Module):
    """`depth` hidden layers of width `hidden`: Linear → norm → activation → dropout.

    With `residual`, every hidden layer after the first adds its input to its output
    (widths are equal there, so no projection is needed).
    """

    def __init__(
        self,
        in_features: int,
        n_outputs: int,
        *,
        hidden: int,
        depth: int,
        activation: str,
        dropout: float,
        norm: str,
        residual: bool,
    ) -> None:
        super().__init__()
        self.residual = residual
        widths = [in_features] + [hidden] * depth
        self.blocks = nn.ModuleList(
            nn.Sequential(
                *_present(
                    nn.Linear(w_in, w_out),
                    _norm_1d(norm, w_out),
                    create_activation(activation),
                    nn.Dropout(dropout) if dropout > 0 else None,
                )
            )
            for w_in, w_out in itertools.pairwise(widths)
        )
        self.head = nn.Linear(widths[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i, block in enumerate(self.blocks):
            x = x + block(x) if self.residual and i > 0 else block(x)
        return self.head(x)


class CNN(nn.Module):
    """`depth` blocks of 3×3 conv (`channels` wide) → norm → activation, each followed by
    2×2 max-pooling while the map is at least 2×2; then global average pooling, dropout
    and a linear head."""

    def __init__(
        self,
        in_shape: Sequence[int],
        n_outputs: int,
        *,
        channels: int,
        depth: int,
        activation: str,
        dropout: float,
        norm: str,
    ) -> None:
        super().__init__()
        c_in, h, w = in_shape
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += _present(
                nn.Conv2d(c_in, channels, 3, padding=1),
                _norm_2d(norm, channels),
                create_activation(activation),
            )
            if h >= 2 and w >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(channels, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.head(self.dropout(x))


def _mlp(in_shape: Sequence[int], n_outputs: int, **params: Any) -> nn.Module:
    in_features = 1
    for size in in_shape:
        in_features *= size
    return MLP(in_features, n_outputs, **pick_params(MLP.__init__, params))


def _cnn(in_shape: Sequence[int], n_outputs: int, **params: Any) -> nn.Module:
    if len(in_shape) != 3:
        raise ValueError(
            f"model 'cnn' needs image inputs (C, H, W); this dataset's samples are "
            f"{tuple(in_shape)}: use model 'mlp'"
        )
    return CNN(in_shape, n_outputs, **pick_params(CNN.__init__, params))


MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": _mlp, "cnn": _cnn}


def create_model(name: str, *, in_shape: Sequence[int], n_outputs: int, **params: Any) -> nn.Module:
    """Build model `name` for samples of shape `in_shape` and `n_outputs` outputs.

    `params` may hold any hyperparameters; each model takes the ones it needs (mlp:
    hidden, depth, activation, dropout, norm, residual; cnn: channels, depth, activation,
    dropout, norm). `ValueError` listing valid names if `name` is unknown, or if a cnn
    is asked for on non-image data.
    """
    return lookup(MODELS, "model", name)(in_shape, n_outputs, **params)
