"""A user model for the training core: `trainable: {dataset: digits, model:
"hpo.examples.models:build"}`.

A user model is one function ``build(config, input_shape, num_outputs)`` returning a
`torch.nn.Module` that maps a batch of samples (``input_shape`` each) to ``num_outputs``
logits, or to one value per sample for regression. `config` is the trial's whole config
as a dict, names outside the core's vocabulary included (here `width` and `blocks`, which
a spec may search or fix like any hyperparameter); everything else of the core
(optimizer, schedule, warm-up, clipping, accumulation, L1/L2, early stopping, `init`,
`amp`) applies to the module as to a built-in one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import prod
from typing import Any

from torch import nn


def build(config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """A plain MLP: `blocks` (default 1) hidden layers of `width` (default 64) units with
    tanh, then a linear head; reads `dropout` from the core's vocabulary."""
    width = int(config.get("width", 64))
    layers: list[nn.Module] = [nn.Flatten()]
    features = prod(input_shape)
    for _ in range(int(config.get("blocks", 1))):
        layers += [nn.Linear(features, width), nn.Tanh(), nn.Dropout(config["dropout"])]
        features = width
    layers.append(nn.Linear(features, num_outputs))
    return nn.Sequential(*layers)
