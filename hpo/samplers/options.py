"""The options each sampler accepts, declared without importing any engine.

`hpo.spec` checks a spec's ``strategy.options`` here at submit time (`option_errors`), so a
bad option is refused with its field path before a study is stored, and the samplers
build their `option_names` from the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SAMPLER_OPTIONS", "Option", "option_errors"]


@dataclass(frozen=True)
class Option:
    """One option: its type (``int`` or ``bool``) and, for an int, its smallest and largest
    values."""

    kind: type
    low: int | None = None
    high: int | None = None

    def error(self, value: object) -> str | None:
        """Why `value` is not a valid value of this option, or None."""
        if self.kind is bool:
            return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low}, got {value}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high}, got {value}"
        return None


SAMPLER_OPTIONS: dict[str, dict[str, Option]] = {
    "grid": {"shuffle": Option(bool)},
    "random": {},
    "tpe": {"n_startup_trials": Option(int, low=0)},
    "gp": {"n_initial_points": Option(int, low=1)},
    "bohb": {
        "min_points_in_model": Option(int, low=2),
        "random_fraction": Option(int, low=0, high=100),
        "n_candidates": Option(int, low=1),
    },
    "skopt": {"n_initial_points": Option(int, low=1)},
    "auto": {},
    "nsga2": {"population_size": Option(int, low=2)},
    "motpe": {"n_startup_trials": Option(int, low=0)},
    "mogp": {"n_startup_trials": Option(int, low=0)},
}


def option_errors(sampler: str, options: Mapping[str, object]) -> list[tuple[str, str]]:
    """(option name, reason) for every unknown or ill-typed option of `sampler`; an
    unknown sampler has none here (the sampler name is checked on its own)."""
    declared = SAMPLER_OPTIONS.get(sampler)
    if declared is None:
        return []
    errors = []
    for name, value in options.items():
        option = declared.get(name)
        if option is None:
            valid = ", ".join(declared) or "none"
            errors.append((name, f"unknown option of sampler {sampler!r} (valid: {valid})"))
        elif (why := option.error(value)) is not None:
            errors.append((name, why))
    return errors
