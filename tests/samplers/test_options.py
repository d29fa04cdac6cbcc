"""Sampler options are checked at load, per sampler, with the field path named."""

from __future__ import annotations

import pytest

from hpo.errors import SpecError
from hpo.samplers import SAMPLERS
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.spec import load_spec


def _spec(sampler: str, options: dict[str, object]) -> dict[str, object]:
    return {
        "name": "s",
        "objective": {"metric": "value", "mode": "min"},
        "trainable": {"function": "hpo.examples.functions:branin"},
        "strategy": {"sampler": sampler, "options": options},
        "space": {"x1": {"choice": [1, 2]}, "x2": {"choice": [0, 1]}},
    }


def test_every_sampler_declares_its_options() -> None:
    assert set(SAMPLER_OPTIONS) == set(SAMPLERS)
    for name, options in SAMPLER_OPTIONS.items():
        assert SAMPLERS[name]().option_names == tuple(options)


@pytest.mark.parametrize(
    ("sampler", "options", "message"),
    [
        ("gp", {"n_initial_pointz": 3}, "strategy.options.n_initial_pointz: unknown option"),
        ("gp", {"n_initial_points": 0}, "strategy.options.n_initial_points: must be >= 1"),
        ("tpe", {"n_startup_trials": "5"}, "strategy.options.n_startup_trials: must be an int"),
        ("tpe", {"n_startup_trials": True}, "strategy.options.n_startup_trials: must be an int"),
        ("grid", {"shuffle": 1}, "strategy.options.shuffle: must be true or false"),
        ("random", {"seed": 1}, "strategy.options.seed: unknown option of sampler 'random'"),
    ],
)
def test_bad_options_are_refused_at_load(
    sampler: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_spec(sampler, options))


def test_good_options_load() -> None:
    spec = load_spec(_spec("gp", {"n_initial_points": 4}))
    assert spec.strategy.options == {"n_initial_points": 4}
