"""User functions for the execution tests (imported by Ray workers by their path)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def crash_midway(config: Mapping[str, Any], report: Callable[[Mapping[str, Any]], None]) -> None:
    """Attempt 1 reports epochs 1..`crash_after` and raises; attempt 2 reports epochs
    1..`retry_epochs` (values 10 + epoch, so the attempts' values never coincide).

    The attempt is remembered by a marker file named after the trial's seed.
    """
    marker = Path(str(config["marker_dir"])) / f"attempted-{config.get('seed')}"
    if not marker.exists():
        marker.touch()
        for epoch in range(1, int(config["crash_after"]) + 1):
            report({"epoch": epoch, "value": float(epoch)})
        raise RuntimeError("attempt 1 crashes on purpose")
    for epoch in range(1, int(config["retry_epochs"]) + 1):
        report({"epoch": epoch, "value": 10.0 + epoch})


def always_fails(config: Mapping[str, Any], report: Callable[[Mapping[str, Any]], None]) -> None:
    """Fails every time, naming its x."""
    raise ValueError(f"no good at x={config['x']}")
