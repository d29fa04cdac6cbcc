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


def _normalized(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of the first block's normalization layer (the block's second module)."""
    seen: list[torch.Tensor] = []
    block = model.blocks[0] if hasattr(model, "blocks") else model.features
    handle = block[1].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    model(x)
    handle.remove()
    return seen[0]


def test_layer_norm_gives_each_sample_mean_0_and_variance_1() -> None:
    torch.manual_seed(0)
    mlp = create_model(
        "mlp",
        in_shape=(6,),
        n_outputs=2,
        **{**COMMON, "dropout": 0.0},
        norm="layer",
        residual=False,
    )
    x = torch.randn(7, 6) * 3 + 5
    z = _normalized(mlp, x)  # (7, hidden): statistics per sample, over features
    torch.testing.assert_close(z.mean(1), torch.zeros(7), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(1, correction=0), torch.ones(7), atol=1e-3, rtol=0)
    cnn = create_model("cnn", in_shape=(1, 8, 8), n_outputs=2, **COMMON, norm="layer")
    z = _normalized(cnn, torch.rand(4, 1, 8, 8) * 4)  # per sample over (C, H, W)
    torch.testing.assert_close(z.mean((1, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var((1, 2, 3), correction=0), torch.ones(4), atol=1e-3, rtol=0)


def test_batch_norm_in_training_normalizes_each_feature_over_the_batch() -> None:
    torch.manual_seed(0)
    mlp = create_model(
        "mlp",
        in_shape=(6,),
        n_outputs=2,
        **{**COMMON, "dropout": 0.0},
        norm="batch",
        residual=False,
    )
    z = _normalized(mlp.train(), torch.randn(32, 6) * 3 + 5)
    torch.testing.assert_close(z.mean(0), torch.zeros(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, correction=0), torch.ones(16), atol=1e-3, rtol=0)
