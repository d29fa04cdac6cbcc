"""Samplers: what proposes the next config of a study, by the name a user writes.

`SAMPLERS` maps each name to a function importing its class, so `import hpo.samplers`
stays cheap and Optuna / scikit-optimize load only when their sampler is used (the same
pattern as Ray's `SEARCH_ALG_IMPORT`). `create_sampler` is the one way to build one::

    sampler = create_sampler("tpe", space, mode="min", seed=0, n_startup_trials=5)
    config = sampler.ask("trial-1")
    sampler.tell("trial-1", 0.42)

Names match `hpo.spec.SAMPLERS` (a test checks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from hpo.space import Param

if TYPE_CHECKING:
    from hpo.samplers.base import Mode, Sampler


def _grid() -> type[Sampler]:
    from hpo.samplers.grid import GridSampler

    return GridSampler


def _random() -> type[Sampler]:
    from hpo.samplers.random import RandomSampler

    return RandomSampler


def _tpe() -> type[Sampler]:
    from hpo.samplers.tpe import TPESampler

    return TPESampler


def _gp() -> type[Sampler]:
    from hpo.samplers.gp import GPSampler

    return GPSampler


def _bohb() -> type[Sampler]:
    from hpo.samplers.bohb import BOHBSampler

    return BOHBSampler


def _skopt() -> type[Sampler]:
    from hpo.samplers.skopt import SkoptSampler

    return SkoptSampler


def _auto() -> type[Sampler]:
    from hpo.samplers.auto import AutoSampler

    return AutoSampler


def _nsga2() -> type[Sampler]:
    from hpo.samplers.multi_objective import NSGA2Sampler

    return NSGA2Sampler


def _motpe() -> type[Sampler]:
    from hpo.samplers.multi_objective import MOTPESampler

    return MOTPESampler


def _mogp() -> type[Sampler]:
    from hpo.samplers.multi_objective import MOGPSampler

    return MOGPSampler


SAMPLERS: dict[str, Callable[[], type[Sampler]]] = {
    "grid": _grid,
    "random": _random,
    "tpe": _tpe,
    "gp": _gp,
    "bohb": _bohb,
    "skopt": _skopt,
    "auto": _auto,
    "nsga2": _nsga2,
    "motpe": _motpe,
    "mogp": _mogp,
}


def create_sampler(
    name: str,
    space: Mapping[str, Param],
    *,
    mode: Mode | Sequence[Mode],
    seed: int | None,
    max_attempts: int = 1,
    **options: object,
) -> Sampler:
    """A new sampler `name` over `space`; ValueError for an unknown name or option.

    `mode` is one direction, or one per objective for a multi-objective study (only
    samplers with `multi_objective` accept more than one; learn with `tell_values`).
    """
    importer = SAMPLERS.get(name)
    if importer is None:
        raise ValueError(f"unknown sampler {name!r} (valid: {', '.join(SAMPLERS)})")
    return importer()(space, mode=mode, seed=seed, max_attempts=max_attempts, **options)
