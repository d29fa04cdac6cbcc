"""Each optimizer learns digits; weight decay is coupled except for adamw."""

from __future__ import annotations

import math

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
    if decay_all:
        groups = param_groups(model, weight_decay=0.1, decay_norm_and_bias=True)
    else:
        groups = param_groups(model, weight_decay=0.1)  # the default spares them
    opt = create_optimizer("sgd", groups, lr=1.0)  # each group's own weight_decay rules
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # only weight decay moves anything
    opt.step()
    for name, p in model.named_parameters():
        is_matrix = name in ("0.weight", "3.weight")
        factor = 0.9 if (is_matrix or decay_all) else 1.0
        torch.testing.assert_close(p.detach(), before[name] * factor, msg=name)


# --- one update of each optimizer against its closed form, written out by hand ---------
# Two steps with different gradients: the second shows what each keeps between steps
# (momentum buffers, squared-gradient sums and averages, Adam's bias corrections).
W0 = [0.5, -1.5, 2.0]
G1 = [0.3, -0.2, 1.0]
G2 = [-0.4, 0.1, 0.5]
LR, MU, B1, B2, EPS, WD = 0.1, 0.7, 0.8, 0.95, 1e-3, 0.05


def _by_hand(name: str) -> list[float]:
    """The weights after two steps, one coordinate at a time, in plain Python."""
    out = []
    for w, g1, g2 in zip(W0, G1, G2, strict=True):
        if name == "sgd":
            w = w - LR * g1
            w = w - LR * g2
        elif name == "momentum":
            b = g1
            w = w - LR * b
            b = MU * b + g2
            w = w - LR * b
        elif name == "nesterov":
            b = g1
            w = w - LR * (g1 + MU * b)
            b = MU * b + g2
            w = w - LR * (g2 + MU * b)
        elif name == "adagrad":
            acc = g1 * g1
            w = w - LR * g1 / (math.sqrt(acc) + EPS)
            acc += g2 * g2
            w = w - LR * g2 / (math.sqrt(acc) + EPS)
        elif name == "rmsprop":  # beta2 is the squared-gradient decay
            v = (1 - B2) * g1 * g1
            w = w - LR * g1 / (math.sqrt(v) + EPS)
            v = B2 * v + (1 - B2) * g2 * g2
            w = w - LR * g2 / (math.sqrt(v) + EPS)
        else:  # adam, adamw
            m = v = 0.0
            for t, g in ((1, g1), (2, g2)):
                if name == "adamw":
                    w = w * (1 - LR * WD)  # decoupled: not part of the gradient
                m = B1 * m + (1 - B1) * g
                v = B2 * v + (1 - B2) * g * g
                m_hat, v_hat = m / (1 - B1**t), v / (1 - B2**t)
                w = w - LR * m_hat / (math.sqrt(v_hat) + EPS)
        out.append(w)
    return out


@pytest.mark.parametrize("name", sorted(LRS))
def test_two_steps_match_the_closed_form(name: str) -> None:
    w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    opt = create_optimizer(
        name,
        [w],
        lr=LR,
        momentum=MU,
        beta1=B1,
        beta2=B2,
        eps=EPS,
        weight_decay=WD if name == "adamw" else 0.0,
    )
    for g in (G1, G2):
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    torch.testing.assert_close(
        w.detach(), torch.tensor(_by_hand(name), dtype=torch.float64), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", sorted(set(LRS) - {"adamw"}))
def test_coupled_weight_decay_is_added_to_the_gradient(name: str) -> None:
    # Coupled L2: a step with (g, wd) is the step with gradient g + wd·w and no decay.
    def after(grad: list[float], weight_decay: float) -> torch.Tensor:
        w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
        opt = create_optimizer(
            name, [w], lr=LR, momentum=MU, beta1=B1, beta2=B2, eps=EPS, weight_decay=weight_decay
        )
        w.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
        return w.detach()

    decayed = [g + WD * w0 for w0, g in zip(W0, G1, strict=True)]
    torch.testing.assert_close(after(G1, WD), after(decayed, 0.0), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(after(G1, WD), after(G1, 0.0))
