"""Budget knobs that need a real run: retries of failing trials and the study's time limit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.execution.conftest import branin_spec

pytestmark = pytest.mark.slow


def test_failed_trials_are_retried_up_to_max_failures(run_spec: Any, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = branin_spec(
        trainable={"function": "hpo.examples.functions:flaky"},
        budget={"trials": 3, "max_epochs": 2, "max_failures": 1},
        space={"x": {"uniform": [0, 1]}},
        fixed={"marker_dir": str(markers)},
    )
    repo, study = run_spec(spec)
    trials = repo.list_trials(study.id)
    assert [t.status for t in trials] == ["completed"] * 3
    assert len(list(markers.iterdir())) == 3  # each trial's first attempt did fail


def test_time_limit_ends_the_study(run_spec: Any) -> None:
    spec = branin_spec(
        budget={"trials": 200, "max_epochs": 200, "time_limit_s": 15, "concurrency": 2},
        fixed={"sleep_s": 0.2},
    )
    started = time.monotonic()
    repo, study = run_spec(spec)
    assert time.monotonic() - started < 120
    assert study.status == "completed"
    counts = repo.count_trials(study.id)
    assert counts["running"] == 0 and 0 < counts["pruned"] + counts["completed"] < 200
    cut = [t for t in repo.list_trials(study.id, limit=500) if t.status == "pruned"]
    assert cut and all(t.epochs_run < 200 and "time limit" in (t.error or "") for t in cut)
    events = [e.message for e in repo.list_events(study.id, limit=1000)]
    assert any("time limit reached" in m for m in events)
