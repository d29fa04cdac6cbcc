"""Models by name (`mlp`, `cnn`, `rnn`, `transformer`), user models, activations by name.

Every built-in model honours `dropout`, `norm` (none | batch | layer) and `activation`
(the rnn's cells have their own nonlinearities); `init` is applied afterwards by
`hpo.training.init`. Outputs are logits (classification) or one value per sample
(regression, squeezed by the loop).

The sequence models read samples (T, F) as T steps of F features, and images (C, H, W)
as H steps (rows) of C·W features: the 8×8 digits are 8 steps of 8 pixels.

A `model` that is not a built-in name is a user ``"pkg.module:build"``, imported through
`hpo.references` and called as ``build(config, input_shape, num_outputs)`` with the
config as a dict (extra names included); it returns any `torch.nn.Module`, to which the
rest of the core applies as to a built-in one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hpo import references
from hpo.training.init import orthogonal_recurrent_
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


def sequence_shape(in_shape: Sequence[int], model: str) -> tuple[int, int]:
    """(steps, features) of samples of shape `in_shape` read as a sequence."""
    if len(in_shape) == 2:
        return in_shape[0], in_shape[1]
    if len(in_shape) == 3:
        c, h, w = in_shape
        return h, c * w
    raise ValueError(
        f"model '{model}' needs sequence inputs (T, F) or images (C, H, W); this "
        f"dataset's samples are {tuple(in_shape)}: use model 'mlp'"
    )


def as_sequence(x: torch.Tensor) -> torch.Tensor:
    """A batch as (N, T, F): images (N, C, H, W) become H steps of C·W features."""
    return x.permute(0, 2, 1, 3).flatten(2) if x.ndim == 4 else x


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the features of (N, T, F), with statistics over every (sample, step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _norm_tokens(norm: str, width: int) -> nn.Module:
    norms = {"none": nn.Identity(), "batch": TokenBatchNorm(width), "layer": nn.LayerNorm(width)}
    return norms[norm]


_CELLS: dict[str, Callable[..., nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class RNN(nn.Module):
    """`depth` recurrent layers (`cell`: lstm, gru or rnn) of `hidden` units per direction,
    each followed by `norm`, with dropout between layers; a linear head reads the last
    step (with `bidirectional`, the forward direction's last step and the backward
    direction's first, each having read the whole sequence).

    Hidden-to-hidden weights start orthogonal per gate, whatever `init` says.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_outputs: int,
        *,
        cell: str,
        hidden: int,
        depth: int,
        bidirectional: bool,
        dropout: float,
        norm: str,
    ) -> None:
        super().__init__()
        _, width = sequence_shape(in_shape, "rnn")
        cell_type = lookup(_CELLS, "cell", cell)
        directions = 2 if bidirectional else 1
        self.hidden = hidden
        self.bidirectional = bidirectional
        self.recurrent = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(depth):
            layer = cell_type(width, hidden, batch_first=True, bidirectional=bidirectional)
            orthogonal_recurrent_(layer)
            self.recurrent.append(layer)
            width = hidden * directions
            self.norms.append(_norm_tokens(norm, width))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_sequence(x)
        last = len(self.recurrent) - 1
        for i, (layer, norm) in enumerate(zip(self.recurrent, self.norms, strict=True)):
            x = norm(layer(x)[0])
            if i < last:
                x = self.dropout(x)
        summary = x[:, -1]
        if self.bidirectional:
            summary = torch.cat([x[:, -1, : self.hidden], x[:, 0, self.hidden :]], dim=-1)
        return self.head(summary)


class EncoderBlock(nn.Module):
    """Multi-head self-attention then a feed-forward network (`ff_mult`·d_model wide),
    each in a residual branch, with `norm` before each branch (`pre`) or after each sum
    (`post`, the original Transformer's order)."""

    def __init__(
        self,
        d_model: int,
        *,
        heads: int,
        ff_mult: int,
        activation: str,
        dropout: float,
        norm: str,
        norm_position: str,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.pre = norm_position == "pre"
        self.attention_dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model),
            create_activation(activation),
            nn.Linear(ff_mult * d_model, d_model),
        )
        self.norm1 = _norm_tokens(norm, d_model)
        self.norm2 = _norm_tokens(norm, d_model)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.dropout(self.out(y.transpose(1, 2).reshape(n, t, d)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.attend(self.norm1(x))
            return x + self.dropout(self.ff(self.norm2(x)))
        x = self.norm1(x + self.attend(x))
        return self.norm2(x + self.dropout(self.ff(x)))


class Transformer(nn.Module):
    """An encoder: a linear embedding of each step plus a learned position embedding
    (one `d_model` vector per step, N(0, 0.02²) at first), dropout, `depth`
    `EncoderBlock`s, a final norm with pre-norm, mean over the steps, a linear head."""

    def __init__(
        self,
        in_shape: Sequence[int],
        n_outputs: int,
        *,
        d_model: int,
        heads: int,
        depth: int,
        ff_mult: int,
        activation: str,
        dropout: float,
        norm: str,
        norm_position: str,
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads ({heads}) must divide d_model ({d_model})")
        steps, features = sequence_shape(in_shape, "transformer")
        self.embed = nn.Linear(features, d_model)
        self.positions = nn.Parameter(torch.randn(steps, d_model) * 0.02)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.blocks = nn.Sequential(
            *(
                EncoderBlock(
                    d_model,
                    heads=heads,
                    ff_mult=ff_mult,
                    activation=activation,
                    dropout=dropout,
                    norm=norm,
                    norm_position=norm_position,
                )
                for _ in range(depth)
            )
        )
        self.final_norm = _norm_tokens(norm if norm_position == "pre" else "none", d_model)
        self.head = nn.Linear(d_model, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embed(as_sequence(x)) + self.positions)
        return self.head(self.final_norm(self.blocks(x)).mean(dim=1))


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


def _rnn(in_shape: Sequence[int], n_outputs: int, **params: Any) -> nn.Module:
    return RNN(in_shape, n_outputs, **pick_params(RNN.__init__, params))


def _transformer(in_shape: Sequence[int], n_outputs: int, **params: Any) -> nn.Module:
    return Transformer(in_shape, n_outputs, **pick_params(Transformer.__init__, params))


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "rnn": _rnn,
    "transformer": _transformer,
}


def create_model(name: str, *, in_shape: Sequence[int], n_outputs: int, **params: Any) -> nn.Module:
    """Build model `name` for samples of shape `in_shape` and `n_outputs` outputs.

    `params` may hold any hyperparameters; each model takes the ones it needs (mlp:
    hidden, depth, activation, dropout, norm, residual; cnn: channels, depth, activation,
    dropout, norm; rnn: cell, hidden, depth, bidirectional, dropout, norm; transformer:
    d_model, heads, depth, ff_mult, activation, dropout, norm, norm_position).
    `ValueError` listing valid names if `name` is unknown, or if the data's shape does
    not suit the model (a cnn on non-images, a sequence model on tabular rows).
    """
    return lookup(MODELS, "model", name)(in_shape, n_outputs, **params)


def build_model(config: Mapping[str, Any], in_shape: Sequence[int], n_outputs: int) -> nn.Module:
    """The model `config["model"]` names: a built-in (see `create_model`), or a user
    ``pkg.module:build`` called as ``build(dict(config), tuple(in_shape), n_outputs)``.

    `ImportError` if a user model cannot be imported, `ValueError` if its builder does
    not return an `nn.Module` (or a built-in does not suit the data).
    """
    name = config["model"]
    if name in MODELS:
        return create_model(name, in_shape=in_shape, n_outputs=n_outputs, **config)
    build = references.load(name)  # the strict grammar: nothing else is imported
    model = build(dict(config), tuple(in_shape), n_outputs)
    if not isinstance(model, nn.Module):
        raise ValueError(f"{name} returned {type(model).__name__}, not a torch.nn.Module")
    return model
