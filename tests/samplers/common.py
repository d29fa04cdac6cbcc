"""Spaces, objectives and helpers shared by the sampler tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from hpo.samplers import create_sampler
from hpo.samplers.base import Sampler
from hpo.space import Param, is_active, parse_space, topological_order

# Every kind of parameter, conditions (one per optimizer) and grid_points, so the same
# space serves every sampler, the grid included.
MIXED = parse_space(
    {
        "optimizer": {"choice": ["sgd", "momentum", "adam"]},
        "momentum": {"uniform": [0.5, 0.99], "grid_points": 3, "when": {"optimizer": ["momentum"]}},
        "beta2": {"uniform": [0.9, 0.999], "grid_points": 2, "when": {"optimizer": ["adam"]}},
        "lr": {"loguniform": [1.0e-4, 0.3], "grid_points": 3},
        "hidden": {"int": [32, 512], "log": True, "grid_points": 3},
        "dropout": {"uniform": [0.0, 0.5], "step": 0.05, "grid_points": 3},
        "layers": {"int": [1, 9], "step": 2, "grid_points": 3},
        "bn": {"grid": [True, False]},
    }
)

# Small options so model-based samplers leave their random start within a few trials.
FAST_OPTIONS: dict[str, dict[str, object]] = {
    "grid": {},
    "random": {},
    "tpe": {"n_startup_trials": 4},
    "gp": {"n_initial_points": 3},
    "bohb": {"min_points_in_model": 4},
    "skopt": {"n_initial_points": 3},
    "auto": {},
    "nsga2": {"population_size": 4},
    "motpe": {"n_startup_trials": 4},
    # The GP acts in tests/samplers/test_multi_objective.py, on two parameters; on this
    # eight-parameter mixed space one suggestion takes 5-20 s on 2 busy cores.
    "mogp": {"n_startup_trials": 12},
}


def make(
    name: str,
    space: Mapping[str, Param] = MIXED,
    *,
    mode: str = "min",
    seed: int | None = 0,
    **options: object,
) -> Sampler:
    opts = {**FAST_OPTIONS[name], **options}
    return create_sampler(name, space, mode=mode, seed=seed, **opts)  # type: ignore[arg-type]


def mixed_objective(config: Mapping[str, Any]) -> float:
    """A deterministic objective of a MIXED config (min near lr=1e-2, dropout=0.1, adam)."""
    value = (math.log10(config["lr"]) + 2) ** 2 + (config["dropout"] - 0.1) ** 2
    value += {"sgd": 1.0, "momentum": 0.5 - config.get("momentum", 0), "adam": 0.0}[
        config["optimizer"]
    ]
    return value + config["layers"] / 10 + abs(math.log2(config["hidden"] / 128)) / 5


def expected_names(space: Mapping[str, Param], config: Mapping[str, Any]) -> set[str]:
    """The parameters that must be in `config`, judged by the values it holds."""
    names: set[str] = set()
    for name in topological_order(space):
        if is_active(space[name], {n: config[n] for n in names}):
            names.add(name)
    return names


def run(
    sampler: Sampler, objective: Callable[[Mapping[str, Any]], float], n: int, prefix: str = "t"
) -> list[dict[str, Any]]:
    """Sequential ask/evaluate/tell for `n` trials; the configs asked, in order."""
    configs = []
    for i in range(n):
        config = sampler.ask(f"{prefix}{i}")
        if config is None:
            break
        configs.append(config)
        sampler.tell(f"{prefix}{i}", objective(config))
    return configs
