"""`init_from: STUDY/NUMBER` on real Ray: a second study starts every trial from the
weights a trial of the first study delivered, read from the same database and artifact
store. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpo.storage.repository import Repository, StudyRecord
from hpo.training.loop import train

pytestmark = pytest.mark.slow

SMALL = {"dataset": "digits", "model": "mlp", "hidden": 32, "depth": 2, "batch_size": 64}


def _spec(name: str, trials: int, epochs: int, **fixed: Any) -> dict[str, Any]:
    return {
        "name": name,
        "objective": {"metric": "val_loss", "mode": "min"},
        "trainable": {"dataset": "digits", "model": "mlp"},
        "budget": {"trials": trials, "max_epochs": epochs, "concurrency": 1},
        "strategy": {"sampler": "random", "scheduler": "fifo", "seed": 0},
        "space": {"lr": {"loguniform": [0.003, 0.01]}},
        "fixed": {"hidden": 32, "depth": 2, "batch_size": 64, **fixed},
    }


def test_a_study_starts_from_a_stored_trials_weights(
    run_spec: Callable[[dict[str, Any]], tuple[Repository, StudyRecord]],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HPO_ARTIFACTS", str(tmp_path / "artifacts"))
    repo, first = run_spec(_spec("pretrain", trials=1, epochs=6))
    assert first.status == "completed"
    (source,) = repo.list_trials(first.id)
    pretrained_loss = source.last_value
    fresh = train({**SMALL, "epochs": 1, "lr": 0.005, "seed": 3}).history[0]["val_loss"]
    assert pretrained_loss is not None and pretrained_loss < fresh / 2

    _, second = run_spec(_spec("finetune", trials=2, epochs=1, init_from=f"{first.id}/1"))
    assert second.status == "completed"
    tuned = repo.list_trials(second.id)
    assert [t.status for t in tuned] == ["completed", "completed"]
    for trial in tuned:
        # One epoch from the stored weights ends far below one epoch from scratch.
        assert trial.last_value is not None and trial.last_value < fresh / 2


def test_a_trial_without_stored_weights_fails_the_trial_naming_why(
    run_spec: Callable[[dict[str, Any]], tuple[Repository, StudyRecord]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HPO_ARTIFACTS", str(tmp_path / "artifacts"))
    repo, study = run_spec(_spec("missing", trials=1, epochs=1, init_from="99/1"))
    assert study.status == "failed"
    (trial,) = repo.list_trials(study.id)
    assert trial.status == "failed"
    assert "not available: no stored weights for trial 99/1" in (trial.error or "")
