"""Random search: independent draws from the space."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.samplers.base import History, Mode, Sampler, TrialState
from hpo.space import Param, sample


class RandomSampler(Sampler):
    """Draws each config independently with `hpo.space.sample` (conditions honored).

    Reproducible: the same `seed` gives the same sequence of configs, whatever is told.
    Learns nothing, so `mode`, `tell` and `observe` do not change what it proposes; it
    never finishes.
    """

    name = "random"
    # Draws ignore values, so random search serves any number of objectives.
    multi_objective = True

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
        self._rng = random.Random(seed)

    def ask(self, key: str) -> dict[str, Any] | None:
        return sample(self.space, self._rng)

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        """Nothing to learn."""
