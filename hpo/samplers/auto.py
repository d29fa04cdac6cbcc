"""auto: picks `gp` or `tpe` from the search space and the trials run so far.

The rule (Optuna's documentation and its AutoSampler point the same way; the benchmark
`benchmarks/search_quality.py` measures `auto` beside both):

- **TPE from the start** when the space is categorical-heavy (more than half of its
  multi-valued parameters are `choice`/`grid`), deeply conditional (a conditional
  parameter whose parent is itself conditional), or wider than `MAX_GP_DIMS` parameters.
  A GP's one-hot features and smooth kernel gain little there, and TPE's trees model
  conditions natively.
- **Otherwise GP**, the most sample-efficient choice for small continuous budgets,
  **until `SWITCH_AFTER` finished trials**, where a GP's cubic cost starts to show and
  TPE has enough data to be good; then TPE takes over, first learning every trial so far
  (failures included), so nothing is lost in the switch.

`picked` says which engine proposes now and `reason` why, for logs and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from hpo.samplers.base import History, Sampler, TrialState
from hpo.samplers.options import SAMPLER_OPTIONS
from hpo.space import Param

# Finished trials after which a GP study continues with TPE.
SWITCH_AFTER = 200
# Parameters beyond which the GP is not tried (its acquisition search degrades).
MAX_GP_DIMS = 20


def space_reason(space: Mapping[str, Param]) -> str | None:
    """Why `space` should go to TPE from the start, or None if it suits a GP."""
    varying = {
        name: p
        for name, p in space.items()
        if not (p.is_categorical and len(p.values) == 1)
        and not (not p.is_categorical and p.bounds[0] == p.bounds[1])
    }
    if len(varying) > MAX_GP_DIMS:
        return f"{len(varying)} parameters (> {MAX_GP_DIMS})"
    categorical = sum(p.is_categorical for p in varying.values())
    if varying and categorical * 2 > len(varying):
        return f"categorical-heavy ({categorical} of {len(varying)} parameters)"
    for name, p in space.items():
        for parent in p.when or {}:
            if parent in space and space[parent].when:
                return f"deeply conditional ({name} depends on conditional {parent})"
    return None


class AutoSampler(Sampler):
    """`gp` or `tpe` by the rule of the module docstring; no options of its own."""

    name = "auto"
    option_names = tuple(SAMPLER_OPTIONS["auto"])

    def __init__(
        self,
        space: Mapping[str, Param],
        *,
        mode: Literal["min", "max"],
        seed: int | None,
        max_attempts: int = 1,
        **options: object,
    ) -> None:
        super().__init__(space, mode=mode, seed=seed, max_attempts=max_attempts, **options)
        reason = space_reason(self.space)
        self._seen: list[tuple[dict[str, Any], float | None, TrialState, History]] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self.picked = "tpe" if reason else "gp"
        self.reason = reason or "small continuous space"
        self._inner: Sampler = self._build(self.picked)
        self._asked_by_inner: set[str] = set()

    def _build(self, name: str) -> Sampler:
        from hpo.samplers import create_sampler

        return create_sampler(name, self.space, mode=self.mode, seed=self.seed)

    def ask(self, key: str) -> dict[str, Any] | None:
        finished = sum(1 for _, _, state, _ in self._seen if state != "failed")
        if self.picked == "gp" and finished >= SWITCH_AFTER:
            self._switch()
        config = self._inner.ask(key)
        if config is not None:
            self._pending[key] = config
            self._asked_by_inner.add(key)
        return config

    def _switch(self) -> None:
        """GP → TPE: TPE learns every trial so far before its first proposal."""
        self.picked = "tpe"
        self.reason = f"{SWITCH_AFTER} finished trials: TPE from here on"
        self._inner = self._build("tpe")
        self._asked_by_inner = set()
        for config, value, state, history in self._seen:
            self._inner.observe(config, value, state=state, history=history)

    def tell(
        self,
        key: str,
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
    ) -> None:
        config = self._pending.pop(key, None)
        if config is None:
            return
        self._seen.append((config, value, state, history))
        if key in self._asked_by_inner:
            self._asked_by_inner.discard(key)
            self._inner.tell(key, value, state=state, history=history)
        else:  # asked by the engine before the switch
            self._inner.observe(config, value, state=state, history=history)

    def observe(
        self,
        config: Mapping[str, Any],
        value: float | None,
        *,
        state: TrialState = "completed",
        history: History = (),
        attempts: int = 1,
    ) -> None:
        if not self.fits(config):
            return
        self._seen.append((dict(config), value, state, history))
        self._inner.observe(config, value, state=state, history=history, attempts=attempts)


__all__ = ["MAX_GP_DIMS", "SWITCH_AFTER", "AutoSampler", "space_reason"]
