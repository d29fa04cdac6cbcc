"""The two helpers every registry in `hpo.training` shares.

A registry is a plain dict from the name a user writes in YAML to a builder. `lookup`
turns an unknown name into an error listing the valid ones; `pick_params` hands a builder
only the hyperparameters its signature names, so one flat config can feed every builder.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def lookup(registry: Mapping[str, T], kind: str, name: str) -> T:
    """`registry[name]`, or `ValueError` naming `kind` and every valid name."""
    try:
        return registry[name]
    except KeyError:
        valid = ", ".join(registry)
        raise ValueError(f"unknown {kind} {name!r}: must be one of {valid}") from None


def pick_params(builder: Callable[..., Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` that `builder` takes as keyword parameters."""
    accepted = inspect.signature(builder).parameters
    return {k: v for k, v in values.items() if k in accepted}
