"""Each initializer's empirical statistics match its formula on a big layer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hpo.training.init import create_initializer

FAN_IN, FAN_OUT = 800, 600


def _init(name: str, **kw: float) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(FAN_IN, FAN_OUT)
    create_initializer(name, **kw)(layer)
    return layer


@pytest.mark.parametrize(
    ("name", "kw", "variance"),
    [
        ("xavier_uniform", {}, 2 / (FAN_IN + FAN_OUT)),
        ("xavier_normal", {}, 2 / (FAN_IN + FAN_OUT)),
        ("kaiming_uniform", {}, 2 / FAN_IN),
        ("kaiming_normal", {}, 2 / FAN_IN),
        ("normal", {"init_std": 0.02}, 0.02**2),
        ("uniform", {"init_range": 0.1}, 0.1**2 / 3),
    ],
)
def test_variance_matches_formula(name: str, kw: dict, variance: float) -> None:
    layer = _init(name, **kw)
    assert layer.weight.var().item() == pytest.approx(variance, rel=0.02)
    assert layer.weight.mean().item() == pytest.approx(0.0, abs=3e-3 * variance**0.5 * 10)
    assert torch.count_nonzero(layer.bias) == 0


def test_uniform_stays_in_range() -> None:
    assert _init("uniform", init_range=0.1).weight.abs().max() <= 0.1


def test_orthogonal_columns_are_orthonormal() -> None:
    w = _init("orthogonal").weight  # 600 × 800: rows orthonormal
    torch.testing.assert_close(w @ w.T, torch.eye(FAN_OUT), atol=1e-4, rtol=0)
    torch.manual_seed(0)
    tall = nn.Linear(64, 256)
    create_initializer("orthogonal")(tall)
    torch.testing.assert_close(tall.weight.T @ tall.weight, torch.eye(64), atol=1e-4, rtol=0)


def test_default_leaves_pytorch_init_and_conv_is_covered() -> None:
    torch.manual_seed(0)
    ref = nn.Linear(10, 10)
    torch.manual_seed(0)
    layer = nn.Linear(10, 10)
    create_initializer("default")(layer)
    assert torch.equal(ref.weight, layer.weight) and torch.equal(ref.bias, layer.bias)
    conv = nn.Conv2d(16, 32, 3)  # fan_in = 16·3·3
    create_initializer("kaiming_normal")(conv)
    assert conv.weight.var().item() == pytest.approx(2 / (16 * 9), rel=0.05)


def test_unknown_init_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="must be one of default, xavier_uniform"):
        create_initializer("lecun")


@pytest.mark.parametrize(
    ("activation", "gain"),
    [
        ("relu", math.sqrt(2.0)),
        ("tanh", 5 / 3),
        ("sigmoid", 1.0),
        ("leaky_relu", math.sqrt(2.0 / (1 + 0.01**2))),
        ("gelu", math.sqrt(2.0)),  # no closed-form gain: ReLU's, which GELU approximates
    ],
)
@pytest.mark.parametrize("name", ["kaiming_normal", "kaiming_uniform"])
def test_kaiming_uses_the_activations_gain(name: str, activation: str, gain: float) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(FAN_IN, FAN_OUT)
    create_initializer(name, activation=activation)(layer)
    assert layer.weight.var().item() == pytest.approx(gain**2 / FAN_IN, rel=0.02)


@pytest.mark.parametrize(("cell", "gates"), [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
def test_recurrent_layers_input_weights_per_gate_and_orthogonal_recurrence(
    cell: type[nn.RNNBase], gates: int
) -> None:
    torch.manual_seed(0)
    hidden, inputs = 200, 300
    layer = cell(inputs, hidden, num_layers=2, bidirectional=True)
    create_initializer("xavier_uniform")(layer)
    for name, p in layer.named_parameters():
        if name.startswith("weight_ih"):
            fan_in = p.shape[1]
            for block in p.detach().chunk(gates):  # each gate as its own (hidden × fan_in) Linear
                var = 2 / (fan_in + hidden)
                assert block.var().item() == pytest.approx(var, rel=0.05)
                assert block.abs().max().item() <= math.sqrt(3 * var) + 1e-6
        elif name.startswith("weight_hh"):
            for block in p.detach().chunk(gates):
                torch.testing.assert_close(block @ block.T, torch.eye(hidden), atol=1e-4, rtol=0)
        else:
            assert torch.count_nonzero(p) == 0, name


def test_attention_projections_and_every_conv_are_covered() -> None:
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {
            "attention": nn.MultiheadAttention(256, 4),
            "conv1d": nn.Conv1d(32, 64, 5),
            "conv3d": nn.Conv3d(8, 16, 3),
        }
    )
    create_initializer("kaiming_normal", activation="relu")(model)
    attention = model["attention"]
    for block in attention.in_proj_weight.detach().chunk(3):  # q, k, v: 256 × 256 each
        assert block.var().item() == pytest.approx(2 / 256, rel=0.05)
    assert attention.out_proj.weight.var().item() == pytest.approx(2 / 256, rel=0.05)
    assert torch.count_nonzero(attention.in_proj_bias) == 0
    assert model["conv1d"].weight.var().item() == pytest.approx(2 / (32 * 5), rel=0.05)
    assert model["conv3d"].weight.var().item() == pytest.approx(2 / (8 * 27), rel=0.05)
