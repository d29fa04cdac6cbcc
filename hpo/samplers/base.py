"""The ask/tell interface every sampler implements, and the helpers they share.

A sampler proposes configs for trials and learns from their final objective. It knows
nothing of Ray: `hpo.execution.searcher.SamplerSearcher` adapts any sampler to Ray's
`Searcher`. Samplers are not thread-safe; the driver calls them from one thread.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from hpo.space import Param, is_active

Mode = Literal["min", "max"]


class Sampler(abc.ABC):
    """Proposes configs of a search space (`ask`) and learns from results (`tell`).

    `mode` says whether smaller ("min") or larger ("max") objective values are better.
    `seed` makes the sequence of configs reproducible given the same calls (None: not
    reproducible). Options a sampler does not declare in `option_names` raise ValueError.

    Failure handling is the same everywhere: a value that is None, NaN or ±inf means the
    trial failed, and is never learned from as a value.

    Not thread-safe: one thread (the study's driver) makes every call.
    """

    name: ClassVar[str]
    option_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        space: Mapping[str, Param],
        *,
        mode: Literal["min", "max"],
        seed: int | None,
        **options: object,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            valid = ", ".join(self.option_names) or "none"
            raise ValueError(
                f"sampler {self.name!r}: unknown option(s) {', '.join(unknown)} (valid: {valid})"
            )
        self.space: dict[str, Param] = dict(space)
        self.mode: Mode = mode
        self.seed = seed

    @abc.abstractmethod
    def ask(self, key: str) -> dict[str, Any] | None:
        """A new config for trial `key` (only active params present), or None once the
        sampler has nothing more to give (grid exhausted)."""

    @abc.abstractmethod
    def tell(self, key: str, value: float | None) -> None:
        """The final objective of trial `key`. None, NaN or ±inf = the trial failed: never
        learned from as a value (the point is released; the sampler may propose it again /
        count it as failed). A key this sampler never asked for is ignored."""

    def observe(self, config: Mapping[str, Any], value: float | None) -> None:
        """Learn from a trial that ran before this sampler existed (resume after a crash,
        warm start): a grid sampler marks that config done so it is never proposed again;
        model-based samplers add it as a finished observation. Configs with params outside
        the space are ignored. This default learns nothing (a sampler with no memory)."""
        return None

    @property
    def finished(self) -> bool:
        """True once `ask` will only ever return None (a grid with no config left)."""
        return False

    def fits(self, config: Mapping[str, Any]) -> bool:
        """Whether `config` is a config of this space: every name known, every value one
        its parameter takes, and exactly the parameters active under it present."""
        if any(name not in self.space for name in config):
            return False
        for name, param in self.space.items():
            if is_active(param, config) != (name in config):
                return False
            if name in config and not param.contains(config[name]):
                return False
        return True


def finite(value: float | None) -> float | None:
    """`value` as a float if it is a finite number, else None (a failed trial)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def int_option(
    sampler: str, options: Mapping[str, object], name: str, default: int, *, low: int
) -> int:
    """Option `name` as an int >= `low` (bools refused), or `default` when absent."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(
            f"sampler {sampler!r}: option {name} must be an integer >= {low}, got {value!r}"
        )
    return value


def bool_option(sampler: str, options: Mapping[str, object], name: str, default: bool) -> bool:
    """Option `name` as a bool, or `default` when absent."""
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"sampler {sampler!r}: option {name} must be true or false, got {value!r}")
    return value


def clean(x: float) -> float:
    """A quantized float without accumulated noise (0.1 + 3*0.05 → 0.25).

    Twelve significant digits, as `hpo.space` does for its own quantized draws.
    """
    return float(f"{x:.12g}")
