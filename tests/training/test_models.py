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
    with pytest.raises(ValueError, match="must be one of mlp, cnn, rnn, transformer"):
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


SEQ = {"hidden": 12, "depth": 2, "dropout": 0.0, "norm": "none", "activation": "relu"}
TRANSFORMER = {
    "d_model": 16,
    "heads": 4,
    "depth": 2,
    "ff_mult": 2,
    "activation": "gelu",
    "dropout": 0.0,
    "norm": "layer",
    "norm_position": "pre",
}


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_rnn_reads_images_as_rows_and_sequences_as_steps(
    cell: str, bidirectional: bool, norm: str
) -> None:
    params = {**SEQ, "cell": cell, "bidirectional": bidirectional, "norm": norm}
    model = create_model("rnn", in_shape=(1, 8, 8), n_outputs=10, **params)
    assert model(torch.rand(5, 1, 8, 8)).shape == (5, 10)
    layers = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    assert len(layers) == 2 and all(m.bidirectional == bidirectional for m in layers)
    assert layers[0].input_size == 8  # one row of 8 pixels per step
    assert layers[1].input_size == 12 * (2 if bidirectional else 1)
    seq = create_model("rnn", in_shape=(30, 2), n_outputs=1, **params)
    assert seq(torch.rand(3, 30, 2)).shape == (3, 1)


def test_rnn_on_images_equals_the_rnn_on_their_rows() -> None:
    torch.manual_seed(0)
    model = create_model(
        "rnn", in_shape=(2, 5, 3), n_outputs=4, cell="gru", bidirectional=False, **SEQ
    )
    x = torch.rand(6, 2, 5, 3)
    rows = x.permute(0, 2, 1, 3).reshape(6, 5, 6)  # step h: channel 0's row h, then channel 1's
    layer = model.recurrent[0]
    assert layer.input_size == 6
    # A step's features are (channel, column) pairs, channel-major.
    torch.testing.assert_close(model(x), model(rows))


def _recurrent_blocks(model: nn.Module) -> list[torch.Tensor]:
    blocks = []
    for m in model.modules():
        if isinstance(m, nn.RNNBase):
            for name, w in m.named_parameters():
                if name.startswith("weight_hh"):
                    blocks += list(w.detach().chunk(w.shape[0] // m.hidden_size))
    return blocks


@pytest.mark.parametrize(("cell", "gates"), [("lstm", 4), ("gru", 3), ("rnn", 1)])
def test_rnn_recurrent_weights_start_orthogonal_per_gate(cell: str, gates: int) -> None:
    torch.manual_seed(0)
    model = create_model("rnn", in_shape=(8, 8), n_outputs=2, cell=cell, bidirectional=True, **SEQ)
    blocks = _recurrent_blocks(model)
    assert len(blocks) == 2 * 2 * gates  # layers × directions × gates
    for w in blocks:
        assert w.shape == (12, 12)
        torch.testing.assert_close(w @ w.T, torch.eye(12), atol=1e-5, rtol=0)


def test_transformer_output_shape_and_heads_must_divide_d_model() -> None:
    model = create_model("transformer", in_shape=(1, 8, 8), n_outputs=10, **TRANSFORMER)
    assert model(torch.rand(5, 1, 8, 8)).shape == (5, 10)
    assert model.positions.shape == (8, 16)  # one learned vector per row
    seq = create_model("transformer", in_shape=(50, 2), n_outputs=1, **TRANSFORMER)
    assert seq(torch.rand(2, 50, 2)).shape == (2, 1)
    with pytest.raises(ValueError, match="must divide d_model"):
        create_model("transformer", in_shape=(8, 8), n_outputs=2, **{**TRANSFORMER, "heads": 3})
    with pytest.raises(ValueError, match="needs sequence inputs"):
        create_model("transformer", in_shape=(13,), n_outputs=2, **TRANSFORMER)


def _silenced_block(norm_position: str) -> nn.Module:
    """One encoder block whose attention and feed-forward branches output exactly 0."""
    torch.manual_seed(0)
    params = {**TRANSFORMER, "depth": 1, "norm_position": norm_position}
    block = create_model("transformer", in_shape=(6, 16), n_outputs=1, **params).blocks[0]
    with torch.no_grad():
        for linear in (block.out, block.ff[2]):
            linear.weight.zero_()
            linear.bias.zero_()
    return block.eval()


def test_pre_norm_normalizes_branch_inputs_and_post_norm_the_residual_sum() -> None:
    x = torch.randn(3, 6, 16) * 4 + 2
    # Pre-norm: x + f(norm(x)); with f ≡ 0 the block is the identity.
    torch.testing.assert_close(_silenced_block("pre")(x), x)
    # Post-norm: norm(x + f(x)) twice; with f ≡ 0 each token is standardized over its
    # features: (x − mean)/sqrt(var + 1e-5), applied twice.
    z = (x - x.mean(-1, keepdim=True)) / (x.var(-1, correction=0, keepdim=True) + 1e-5).sqrt()
    z = (z - z.mean(-1, keepdim=True)) / (z.var(-1, correction=0, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(_silenced_block("post")(x), z, atol=1e-5, rtol=1e-4)


def test_pre_and_post_norm_differ_with_live_branches() -> None:
    pre, post = _silenced_block("pre"), _silenced_block("post")
    post.load_state_dict(pre.state_dict())
    with torch.no_grad():
        for block in (pre, post):
            block.out.weight.fill_(0.1)
    x = torch.randn(2, 6, 16)
    assert not torch.allclose(pre(x), post(x))


def test_learned_positions_are_used_and_break_permutation_invariance() -> None:
    torch.manual_seed(0)
    model = create_model("transformer", in_shape=(8, 8), n_outputs=3, **TRANSFORMER).eval()
    x = torch.randn(4, 8, 8)
    shuffled = x[:, torch.randperm(8)]
    # Self-attention and mean pooling are permutation-equivariant/invariant: only the
    # position embedding tells steps apart.
    assert not torch.allclose(model(x), model(shuffled), atol=1e-4)
    with torch.no_grad():
        model.positions.zero_()
    torch.testing.assert_close(model(x), model(shuffled), atol=1e-5, rtol=1e-4)
    # The embedding is a parameter that training updates.
    assert any(p is model.positions for p in model.parameters())
    model.train()
    model(x).sum().backward()
    assert model.positions.grad is not None and model.positions.grad.abs().sum() > 0


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_transformer_norms(norm: str) -> None:
    model = create_model(
        "transformer", in_shape=(8, 8), n_outputs=3, **{**TRANSFORMER, "norm": norm}
    )
    kinds = {type(m).__name__ for m in model.modules()}
    assert ("TokenBatchNorm" in kinds) == (norm == "batch")
    assert ("LayerNorm" in kinds) == (norm == "layer")
    assert model(torch.randn(4, 8, 8)).shape == (4, 3)
