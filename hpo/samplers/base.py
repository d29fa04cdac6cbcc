"""The ask/tell interface every sampler implements, and the helpers they share.

A sampler proposes configs for trials and learns from their final objective. It knows
nothing of Ray: `hpo.execution.searcher.SamplerSearcher` adapts any sampler to Ray's
`Searcher`. Samplers are not thread-safe; the driver calls them from one thread.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from hpo.numbers import finite
from hpo.space import Param, is_active

Mode = Literal["min", "max"]
# How a trial ended, as a sampler learns it: ran its budget, stopped by the scheduler with
# its intermediate values, or failed (nothing to learn as a value).
TrialState = Literal["completed", "pruned", "failed"]
History = Sequence[tuple[int, float | None]]


class Sampler(abc.ABC):
    """Proposes configs of a search space (`ask`) and learns from results (`tell`).

    `mode` says whether smaller ("min") or larger ("max") objective values are better; a
    sampler with `multi_objective` also takes one mode per objective (`modes`), and learns
    a trial's vector of values through `tell_values` / `observe_values`. Every sampler
    takes those two with a single value, so callers need not tell the kinds apart.
    `seed` makes the sequence of configs reproducible given the same calls (None: not
    reproducible). Options a sampler does not declare in `option_names` raise ValueError.

    Failure handling is the same everywhere: a value that is None, NaN or ±inf, or the
    state ``failed``, means the trial failed, and is never learned from as a value.

    `max_attempts` (not an option: the budget's ``max_failures + 1``) is how many attempts
    a config gets in all; a grid re-runs a failed config on resume until it had them.

    Not thread-safe: one thread (the study's driver) makes every call.
    """

    name: ClassVar[str]
    option_names: ClassVar[tuple[str, ...]] = ()
    # Whether the sampler searches several objectives at once (a Pareto front).
    multi_objective: ClassVar[bool] = False

    def __init__(
        self,
        space: Mapping[str, Param],
        *,
        mode: Mode | Sequence[Mode],
        seed: int | None,
        max_attempts: int = 1,
        **options: object,
    ) -> None:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        if not modes or any(m not in ("min", "max") for m in modes):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if len(modes) > 1 and not self.multi_objective:
            raise ValueError(
                f"sampler {self.name!r} optimizes one objective, got {len(modes)} "
                "(multi-objective samplers: nsga2, motpe, mogp)"
            )
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            valid = ", ".join(self.option_names) or "none"
            raise ValueError(
                f"sampler {self.name!r}: unknown option(s) {', '.join(unknown)} (valid: {valid})"
            )
        self.space: dict[str, Param] = dict(space)
        self.modes: tuple[Mode, ...] = modes
        # The first objective's direction (the only one for a single-objective sampler).
        self.mode: Mode = modes[0]
        self.seed = seed
        self.max_attempts = max_attempts

    @abc.abstractmethod
    def ask(self, key: str) -> dict[str, Any] | None:
        """A new config for trial `key` (only active params present), or None once the
        sampler has nothing more to give (grid exhausted)."""

    @abc.abstractmethod
    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        """How trial `key` ended: its one objective `value`, its `state` and its
        `history` of (step, objective) reports. ``failed``, or a value that is None, NaN or
        ±inf, is never learned from as a value. A key never asked for is ignored."""

    def report(self, key: str, step: int, value: float | None) -> None:
        """An intermediate (step, objective) report of trial `key` while it runs, for
        samplers that model budgets (BOHB). Reports are advisory: `tell` still carries
        the whole history. This default ignores them."""
        return None

    def tell_values(
        self,
        key: str,
        values: Sequence[float | None],
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        """`tell` with one value per objective, in the order of `modes`; a vector with any
        value None, NaN or ±inf is a failed trial's. This default serves samplers that
        model one value: it tells the first (grid and random, which model none, take any
        number of objectives this way)."""
        self.tell(key, _first(self, values), state=state, history=history)

    def observe_values(
        self,
        config: Mapping[str, Any],
        values: Sequence[float | None],
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        """`observe` with one value per objective (see `tell_values`)."""
        self.observe(config, _first(self, values), state=state, history=history, attempts=attempts)

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        """Learn from a trial that ran before this sampler existed (resume after a crash,
        warm start), as `tell` would have, `attempts` being the attempts it made: a grid
        marks the config done; model-based samplers add the observation. Configs with
        params outside the space are ignored. This default learns nothing."""
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


def _first(sampler: Sampler, values: Sequence[float | None]) -> float | None:
    """The first of one value per objective, None unless every one is finite."""
    if len(values) != len(sampler.modes):
        raise ValueError(
            f"sampler {sampler.name!r}: {len(values)} value(s) for {len(sampler.modes)} "
            "objective(s)"
        )
    return values[0] if all(finite(v) is not None for v in values) else None


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


def continued_seed(seed: int | None, proposed: int) -> int | None:
    """The seed of a sampler rebuilt after `proposed` configs of its study were proposed.

    A resumed sampler must continue, not replay: seeding it again with the study seed
    would propose the same sequence (random draws, warm-up points) a second time. The
    study seed and the count give a fresh, reproducible stream; `proposed` 0 keeps `seed`.
    """
    if seed is None or proposed == 0:
        return seed
    digest = hashlib.sha256(f"hpo-resume:{seed}:{proposed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
