"""Optimizers by the name a user writes in YAML.

Every builder takes the same keyword hyperparameters so a config feeds any of them; each
uses only those that mean something for it. `weight_decay` is torch's own argument:
coupled L2 (added to the gradient) everywhere except `adamw`, where it is decoupled.

`param_groups` splits a model's parameters so that weight decay hits only weight
matrices and kernels, not biases or normalization parameters (unless
`decay_norm_and_bias`): shrinking a bias or a norm's scale towards 0 is not a
regularizer, it only fights the layer's own normalization. It also gives a model's head
its own lr factor (`lr_head_mult`, for fine-tuning) through each group's ``lr_mult``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from hpo.training.registry import lookup

Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]
OptimizerBuilder = Callable[..., Optimizer]


def _sgd(params: Params, *, lr: float, weight_decay: float, **_: Any) -> Optimizer:
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


def _momentum(
    params: Params, *, lr: float, momentum: float, weight_decay: float, **_: Any
) -> Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _nesterov(
    params: Params, *, lr: float, momentum: float, weight_decay: float, **_: Any
) -> Optimizer:
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay
    )


def _adagrad(params: Params, *, lr: float, eps: float, weight_decay: float, **_: Any) -> Optimizer:
    return torch.optim.Adagrad(params, lr=lr, eps=eps, weight_decay=weight_decay)


def _rmsprop(
    params: Params, *, lr: float, beta2: float, eps: float, weight_decay: float, **_: Any
) -> Optimizer:
    # beta2 plays the role of RMSprop's smoothing constant, as it does for Adam's second moment.
    return torch.optim.RMSprop(params, lr=lr, alpha=beta2, eps=eps, weight_decay=weight_decay)


def _adam(
    params: Params,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    **_: Any,
) -> Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


def _adamw(
    params: Params,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    **_: Any,
) -> Optimizer:
    return torch.optim.AdamW(
        params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay
    )


def param_groups(
    model: torch.nn.Module,
    *,
    weight_decay: float,
    decay_norm_and_bias: bool = False,
    head: Collection[int] = (),
    lr_head_mult: float = 1.0,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups of the trainable parameters (frozen ones are left out).

    Weight matrices and kernels (≥ 2 dimensions) get `weight_decay`; biases and
    normalization parameters (1-dimensional) get 0 unless `decay_norm_and_bias` (one
    group holds both when `weight_decay` is 0). Each
    group carries ``lr_mult``, the factor `LRStepper` applies to the schedule's lr:
    `lr_head_mult` for the parameters whose ids are in `head` (see
    `hpo.training.finetune.head_parameters`), 1 for the rest. Empty groups are dropped.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    parts = [(params, 1.0)]
    if lr_head_mult != 1.0:
        parts = [
            ([p for p in params if id(p) not in head], 1.0),
            ([p for p in params if id(p) in head], lr_head_mult),
        ]
    groups: list[dict[str, Any]] = []
    for part, mult in parts:
        if decay_norm_and_bias or weight_decay == 0:
            # Without decay the split changes nothing, and every group costs the
            # optimizer a pass of Python per step (measurable on small models).
            split = [(part, weight_decay)]
        else:
            split = [([p for p in part if p.ndim >= 2], weight_decay)]
            split.append(([p for p in part if p.ndim < 2], 0.0))
        groups += [
            {"params": ps, "weight_decay": decay, "lr_mult": mult} for ps, decay in split if ps
        ]
    return groups


OPTIMIZERS: dict[str, OptimizerBuilder] = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adamw,
}


def create_optimizer(
    name: str,
    params: Params,
    *,
    lr: float,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Build optimizer `name` over `params` (parameters, or groups from `param_groups`,
    whose own `weight_decay` wins); `ValueError` listing valid names if unknown."""
    builder = lookup(OPTIMIZERS, "optimizer", name)
    return builder(
        params,
        lr=lr,
        momentum=momentum,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
    )
