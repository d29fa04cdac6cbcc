"""Weight initializers by name, applied to every weight layer of a model, built-in or user.

Every scheme but "default" (PyTorch's own, left untouched) applies to the weights of
every Linear and Conv (1-, 2- and 3-d) layer, to the input projections of
`nn.MultiheadAttention` (q, k and v each on its own) and to the input-to-hidden weights
of recurrent layers (`nn.RNN`, `nn.GRU`, `nn.LSTM`; each gate's block on its own, as if
it were its own Linear); it sets recurrent hidden-to-hidden weights orthogonal (each
gate's block: W·Wᵀ = I), which keeps the recurrence's gradient from exploding or
vanishing at the start, and sets every bias of those layers to zero.
Variances the tests hold them to (fan_in/fan_out as torch counts them):

===============  ==========================================
xavier_uniform   Var = 2/(fan_in + fan_out)  (gain 1)
xavier_normal    Var = 2/(fan_in + fan_out)  (gain 1)
kaiming_uniform  Var = gain²/fan_in          (the activation's gain, below)
kaiming_normal   Var = gain²/fan_in          (the activation's gain, below)
orthogonal       WᵀW = I (or WWᵀ = I for wide matrices), gain 1
normal           N(0, init_std²)
uniform          U(−init_range, init_range): Var = init_range²/3
===============  ==========================================

Kaiming's gain follows the model's `activation` (torch's `calculate_gain`): relu √2,
leaky_relu √(2/(1+0.01²)) (torch's default slope), tanh 5/3, sigmoid 1; gelu has no
closed form and takes ReLU's √2, which it approximates for positive inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
from torch import nn

from hpo.training.registry import lookup

WeightInit = Callable[[torch.Tensor], object]


#: torch's name for each activation's gain, and the negative slope it needs.
Nonlinearity = Literal["relu", "leaky_relu", "tanh", "sigmoid"]
_GAIN: dict[str, tuple[Nonlinearity, float]] = {
    "relu": ("relu", 0.0),
    "gelu": ("relu", 0.0),
    "leaky_relu": ("leaky_relu", 0.01),
    "tanh": ("tanh", 0.0),
    "sigmoid": ("sigmoid", 0.0),
}


def _initializers(
    init_std: float, init_range: float, activation: str = "relu"
) -> dict[str, WeightInit | None]:
    nonlinearity, slope = lookup(_GAIN, "activation", activation)
    return {
        "default": None,
        "xavier_uniform": nn.init.xavier_uniform_,
        "xavier_normal": nn.init.xavier_normal_,
        "kaiming_uniform": partial(nn.init.kaiming_uniform_, a=slope, nonlinearity=nonlinearity),
        "kaiming_normal": partial(nn.init.kaiming_normal_, a=slope, nonlinearity=nonlinearity),
        "orthogonal": nn.init.orthogonal_,
        "normal": partial(nn.init.normal_, mean=0.0, std=init_std),
        "uniform": partial(nn.init.uniform_, a=-init_range, b=init_range),
    }


#: The registered names; the builders depend on init_std/init_range, see `create_initializer`.
INITIALIZERS: dict[str, WeightInit | None] = _initializers(init_std=0.01, init_range=0.05)


def _gates(layer: nn.RNNBase) -> int:
    """Gates stacked in each of `layer`'s weights: 4 for LSTM, 3 for GRU, 1 for RNN."""
    return {"LSTM": 4, "GRU": 3}.get(layer.mode, 1)


def orthogonal_recurrent_(layer: nn.RNNBase) -> None:
    """Set each gate's block of every hidden-to-hidden weight of `layer` orthogonal."""
    gates = _gates(layer)
    with torch.no_grad():
        for name, weight in layer.named_parameters():
            if name.startswith("weight_hh"):
                for block in weight.chunk(gates, dim=0):
                    nn.init.orthogonal_(block)


def _recurrent(layer: nn.RNNBase, weight_init: WeightInit) -> None:
    gates = _gates(layer)
    for name, param in layer.named_parameters():
        if name.startswith("weight_ih"):
            for block in param.chunk(gates, dim=0):
                weight_init(block)
        elif name.startswith("bias"):
            param.zero_()
    orthogonal_recurrent_(layer)


def _attention(layer: nn.MultiheadAttention, weight_init: WeightInit) -> None:
    if layer.in_proj_weight is not None:
        for block in layer.in_proj_weight.chunk(3, dim=0):  # q, k, v
            weight_init(block)
    else:
        for weight in (layer.q_proj_weight, layer.k_proj_weight, layer.v_proj_weight):
            weight_init(weight)
    if layer.in_proj_bias is not None:
        layer.in_proj_bias.zero_()
    # out_proj is an nn.Linear: the loop over modules initializes it.


def create_initializer(
    name: str, *, init_std: float = 0.01, init_range: float = 0.05, activation: str = "relu"
) -> Callable[[nn.Module], None]:
    """A function that initializes a model in place with scheme `name`; Kaiming schemes
    use the gain of the model's `activation`.

    `ValueError` listing the valid names if `name` is unknown.
    """
    lookup(INITIALIZERS, "init", name)
    weight_init = _initializers(init_std, init_range, activation)[name]

    def apply(model: nn.Module) -> None:
        if weight_init is None:
            return
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
                    weight_init(module.weight)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.RNNBase):
                    _recurrent(module, weight_init)
                elif isinstance(module, nn.MultiheadAttention):
                    _attention(module, weight_init)

    return apply
