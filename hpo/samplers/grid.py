"""Grid search: every config of the grid, each exactly once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.samplers.base import History, Mode, Sampler, TrialState, bool_option
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.space import Param, expand_grid

ConfigKey = tuple[tuple[str, str, Any], ...]


def config_key(config: Mapping[str, Any]) -> ConfigKey:
    """A hashable identity of a config; the type name keeps `True` apart from `1`."""
    return tuple(sorted((name, type(v).__name__, v) for name, v in config.items()))


class GridSampler(Sampler):
    """Enumerates `hpo.space.expand_grid(space)`: the full, condition-aware product.

    Each config is proposed exactly once, in the space's order (or shuffled with `seed`
    when the option `shuffle` is true); then `ask` returns None and `finished` is True.
    A failed trial (None, NaN or ±inf) counts as done and is not proposed again, so a
    grid never loops on a config that crashes. On resume, `observe` marks a config done
    once a trial of it completed or was pruned, or once its trials made `max_attempts`
    attempts in all; a config that failed (or was interrupted) with attempts left is
    proposed again. `mode` and the values themselves do not matter to a grid.

    Ranges need `grid_points`; a space that cannot be enumerated raises ValueError.
    """

    name = "grid"
    # Draws ignore values, so a grid serves any number of objectives.
    multi_objective = True
    option_names = tuple(SAMPLER_OPTIONS["grid"])

    def __init__(
        self,
        space: Mapping[str, Param],
        *,
        mode: Mode | Sequence[Mode],
        seed: int | None,
        max_attempts: int = 1,
        **options: object,
    ) -> None:
        super().__init__(space, mode=mode, seed=seed, max_attempts=max_attempts, **options)
        shuffle = bool_option(self.name, options, "shuffle", False)
        try:
            self._configs = list(expand_grid(self.space))
        except ValueError as exc:
            raise ValueError(f"sampler 'grid': {exc}") from exc
        if shuffle:
            random.Random(seed).shuffle(self._configs)
        self._next = 0
        self._done: set[ConfigKey] = set()
        self._attempts: Counter[ConfigKey] = Counter()

    def ask(self, key: str) -> dict[str, Any] | None:
        self._skip_done()
        if self._next == len(self._configs):
            return None
        config = self._configs[self._next]
        self._next += 1
        # Done from the moment it is handed out: never proposed again, whether its trial
        # succeeds, fails or never reports.
        self._done.add(config_key(config))
        return dict(config)

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        """Nothing to learn: the config was counted as done when it was asked."""

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        """Mark `config` done if a trial of it ran (completed or pruned) or its trials
        used up `max_attempts` attempts (configs outside the grid are ignored)."""
        key = config_key(config)
        self._attempts[key] += attempts
        if state != "failed" or self._attempts[key] >= self.max_attempts:
            self._done.add(key)

    @property
    def finished(self) -> bool:
        self._skip_done()
        return self._next == len(self._configs)

    def _skip_done(self) -> None:
        while (
            self._next < len(self._configs) and config_key(self._configs[self._next]) in self._done
        ):
            self._next += 1

    @property
    def size(self) -> int:
        """How many configs the grid has in all."""
        return len(self._configs)
