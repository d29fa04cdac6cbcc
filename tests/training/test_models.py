"""Model shapes and options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hpo.training.models import create_activation, create_model

COMMON = {"hidden": 16, "depth": 3, "activation": "gelu", "dropout": 0.1, "channels": 8}


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_output_shape(name: str, norm: str) -> None:
    model = create_model(name, in_shape=(1, 8, 8), n_outputs=10, norm=norm, residual=True, **COMMON)
    assert model(torch.rand(5, 1, 8, 8)).shape == (5, 10)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    assert bool(norms) == (norm == "batch")


def test_mlp_depth_and_residual() -> None:
    model = create_model("mlp", in_shape=(4,), n_outputs=1, norm="none", residual=True, **COMMON)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4  # 3 hidden + head
    # With every hidden weight zero (and zero biases), residual blocks pass their input on.
    with torch.no_grad():
        for m in linears[1:3]:
            m.weight.zero_()
            m.bias.zero_()
    model.eval()
    x = torch.rand(2, 4)
    first = model.blocks[0](x)
    torch.testing.assert_close(model(x), model.head(first))


def test_cnn_on_tabular_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs image inputs"):
        create_model("cnn", in_shape=(13,), n_outputs=3, norm="none", **COMMON)


def test_unknown_names_list_valid_ones() -> None:
    with pytest.raises(ValueError, match="must be one of mlp, cnn"):
        create_model("resnet", in_shape=(4,), n_outputs=2)
    with pytest.raises(ValueError, match="must be one of relu, gelu"):
        create_activation("swish")
