"""Two drivers writing to one PostgreSQL at once never corrupt each other's studies."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hpo.storage.repository import Repository
from tests.execution.conftest import branin_spec

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_two_drivers_on_one_postgresql(make_pg_database: Callable[[], str], tmp_path: Path) -> None:
    url = make_pg_database()
    ranges = {"left": [-5.0, 0.0], "right": [5.0, 10.0]}
    procs = []
    for name, x1 in ranges.items():
        spec = branin_spec(
            name=name,
            budget={"trials": 6, "max_epochs": 3, "concurrency": 1},
            space={"x1": {"uniform": x1}, "x2": {"uniform": [0, 15]}},
        )
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "hpo", "run", str(path), "--db", url, "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    repo = Repository(url)
    studies = {s.name: s for s in repo.list_studies()}
    assert set(studies) == set(ranges)
    for name, (low, high) in ranges.items():
        study = studies[name]
        assert study.status == "completed"
        trials = repo.list_trials(study.id, limit=100)
        assert [t.number for t in trials] == list(range(1, 7))
        assert all(t.study_id == study.id and low <= t.config["x1"] <= high for t in trials)
        for t in trials:
            steps = sorted({m.step for m in repo.trial_metrics(t.id)})
            assert steps == [1, 2, 3]
        best = repo.best_trial(study.id)
        assert best is not None and best.study_id == study.id
    repo.close()
