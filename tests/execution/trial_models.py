"""A user model for the checkpoint tests (imported by Ray workers by its path)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


class Logged(torch.nn.Module):
    """A small MLP that appends one line to `log` per evaluation (one per epoch), sleeps
    `sleep_s` there, and raises once, at the `crash_at`-th evaluation, while `marker`
    does not exist (the retry finds it and trains on)."""

    def __init__(
        self,
        inner: torch.nn.Module,
        log: Path,
        marker: Path | None,
        crash_at: int,
        sleep_s: float,
    ) -> None:
        super().__init__()
        self.inner = inner
        self._log, self._marker, self._crash_at, self._sleep_s = log, marker, crash_at, sleep_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            with self._log.open("a") as f:
                f.write("eval\n")
            time.sleep(self._sleep_s)
            evals = len(self._log.read_text().splitlines())
            if self._marker is not None and evals == self._crash_at and not self._marker.exists():
                self._marker.touch()
                raise RuntimeError(f"crash at evaluation {evals} on purpose")
        out: torch.Tensor = self.inner(x.flatten(1))
        return out


def logged_mlp(config: Mapping[str, Any], in_shape: tuple[int, ...], n_outputs: int) -> Any:
    """`Logged` over a 16-unit MLP: `log_dir`, `crash_at` (0: never), `sleep_s`; its
    files are named after the trial's seed."""
    width = int(torch.tensor(in_shape).prod())
    inner = torch.nn.Sequential(
        torch.nn.Linear(width, 16), torch.nn.ReLU(), torch.nn.Linear(16, n_outputs)
    )
    folder = Path(str(config["log_dir"]))
    crash_at = int(config.get("crash_at", 0))
    marker = folder / f"crashed-{config.get('seed')}" if crash_at else None
    log = folder / f"evals-{config.get('seed')}"
    return Logged(inner, log, marker, crash_at, float(config.get("sleep_s", 0.0)))
