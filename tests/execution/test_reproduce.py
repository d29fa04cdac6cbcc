"""A study's ranking can be trusted: one split for all its trials, one defined value per
trial, and `hpo best`'s reproduce command gives that value back from the database alone."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.slow

WINE: dict[str, Any] = {
    "name": "wine-trust",
    "objective": {"metric": "val_loss", "mode": "min"},
    "trainable": {"dataset": "wine", "model": "mlp"},
    "budget": {"trials": 6, "max_epochs": 6, "min_epochs": 1, "concurrency": 2},
    "strategy": {"sampler": "random", "scheduler": "asha", "seed": 3, "reduction_factor": 2},
    "space": {
        "lr": {"loguniform": [1e-3, 0.3]},
        "optimizer": {"choice": ["sgd", "adam"]},
    },
    "fixed": {"hidden": 16, "preprocess": "standardize", "batch_size": 32, "test_fraction": 0.2},
}


def _hpo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpo", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("how", ["last", "best"])
def test_one_split_and_an_exact_reproduce_command(run_spec: Any, db_url: str, how: str) -> None:
    spec = {**WINE, "objective": {**WINE["objective"], "value": how}}
    repo, study = run_spec(spec)
    assert study.status == "completed"
    trials = repo.list_trials(study.id, limit=100)
    finished = [t for t in trials if t.status in ("completed", "pruned")]
    assert len(finished) == 6

    # One split per study: every trial trained and validated on the same rows.
    assert {t.provenance["data_seed"] for t in trials} == {3}
    assert len({t.provenance["split_hash"] for t in trials}) == 1
    assert len({t.seed for t in trials}) == len(trials)  # while each trial has its own seed

    # One value per trial, as the spec defines it, from the trial's own history.
    for t in finished:
        losses = [m.value for m in repo.trial_metrics(t.id) if m.name == "val_loss"]
        expected = losses[-1] if how == "last" else min(losses)
        assert t.objective_value == pytest.approx(expected, abs=0)

    # The best comes from the trials that ran their whole budget, by that value.
    full = [t for t in finished if t.status == "completed"]
    assert full, "ASHA with 6 trials must let at least one run to the end"
    best_value = min(t.objective_value for t in full if t.objective_value is not None)
    shown = _hpo("best", str(study.id), "--db", db_url, "--json")
    assert shown.returncode == 0, shown.stderr
    best = json.loads(shown.stdout)
    assert best["status"] == "completed"
    assert best["value"] == pytest.approx(best_value, abs=0)
    assert best["value_label"] == f"val_loss, {how} epoch"
    assert best["reproduce"].startswith(f"hpo train --trial {study.id}/{best['number']}")

    # The held-out test split: scored once, on the chosen trial only, after the search;
    # no trial ever reported a test metric, so neither sampler nor scheduler saw one.
    assert set(best["test_metrics"]) == {"test_loss", "test_accuracy"}
    assert 0 <= best["test_metrics"]["test_accuracy"] <= 1
    assert not any(m.name.startswith("test_") for t in trials for m in repo.trial_metrics(t.id))
    assert [t.number for t in trials if "test_metrics" in t.provenance] == [best["number"]]
    assert [e.kind for e in repo.list_events(study.id, kind="tested")] == ["tested"]

    # The reproduce command retrains from the database alone and gets the stored value.
    again = _hpo("train", "--trial", f"{study.id}/{best['number']}", "--db", db_url, "--json")
    assert again.returncode == 0, again.stderr
    done = json.loads(again.stdout)
    assert done["value"] == pytest.approx(best["value"], abs=1e-6)
    assert done["difference"] <= 1e-6

    # A pruned trial is replayed to the epoch where the scheduler stopped it.
    pruned = [t for t in finished if t.status == "pruned"]
    if pruned:
        p = pruned[0]
        replay = _hpo("train", "--trial", f"{study.id}/{p.number}", "--db", db_url, "--json")
        assert replay.returncode == 0, replay.stderr
        doc = json.loads(replay.stdout)
        assert len(doc["history"]) == p.epochs_run
        assert doc["value"] == pytest.approx(p.objective_value, abs=1e-6)


@pytest.mark.parametrize("ref", ["7", "a/1", "1/0", "1/x"])
def test_train_trial_refuses_a_malformed_reference(ref: str, tmp_path: Any) -> None:
    out = _hpo("train", "--trial", ref, "--db", f"sqlite:///{tmp_path}/x.db")
    assert out.returncode == 2
    assert "--trial" in out.stderr and "Traceback" not in out.stderr


def test_train_trial_names_a_missing_trial(tmp_path: Any) -> None:
    out = _hpo("train", "--trial", "4/2", "--db", f"sqlite:///{tmp_path}/x.db")
    assert out.returncode == 2
    assert "4" in out.stderr and "Traceback" not in out.stderr
