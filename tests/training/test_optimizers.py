"""Each optimizer learns digits; weight decay is coupled except for adamw."""

from __future__ import annotations

import pytest
import torch

from hpo.training.loop import train
from hpo.training.optimizers import create_optimizer, param_groups

LRS = {
    "sgd": 0.2,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.05,
    "rmsprop": 1e-3,
    "adam": 3e-3,
    "adamw": 3e-3,
}


@pytest.mark.parametrize("name", sorted(LRS))
def test_reaches_90_percent_on_digits_within_15_epochs(name: str) -> None:
    result = train(
        {
            "optimizer": name,
            "lr": LRS[name],
            "epochs": 15,
            "hidden": 64,
            "batch_size": 32,
            "early_stopping_metric": "val_accuracy",
        }
    )
    assert result.best["val_accuracy"] >= 0.9


def _one_step(name: str, weight_decay: float) -> torch.Tensor:
    w = torch.nn.Parameter(torch.ones(3))
    opt = create_optimizer(name, [w], lr=0.1, weight_decay=weight_decay)
    w.grad = torch.zeros(3)  # only weight decay moves w
    opt.step()
    return w.detach()


def test_weight_decay_coupled_for_sgd_decoupled_for_adamw() -> None:
    # SGD: w − lr·wd·w. AdamW: w − lr·wd·w as well but outside the adaptive step; Adam
    # instead normalizes the decay gradient, moving w by ≈ lr regardless of wd.
    torch.testing.assert_close(_one_step("sgd", 0.01), torch.full((3,), 1 - 0.1 * 0.01))
    torch.testing.assert_close(_one_step("adamw", 0.01), torch.full((3,), 1 - 0.1 * 0.01))
    torch.testing.assert_close(_one_step("adam", 0.01), torch.full((3,), 0.9), rtol=0, atol=1e-5)


def test_unknown_optimizer_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="must be one of sgd, momentum, nesterov"):
        create_optimizer("lion", [], lr=0.1)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2)
    )


@pytest.mark.parametrize("decay_all", [False, True])
def test_weight_decay_spares_biases_and_norm_parameters_by_default(decay_all: bool) -> None:
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    groups = param_groups(model, weight_decay=0.1, decay_norm_and_bias=decay_all)
    opt = create_optimizer("sgd", groups, lr=1.0, weight_decay=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # only weight decay moves anything
    opt.step()
    for name, p in model.named_parameters():
        is_matrix = name in ("0.weight", "3.weight")
        factor = 0.9 if (is_matrix or decay_all) else 1.0
        torch.testing.assert_close(p.detach(), before[name] * factor, msg=name)
