"""Exports: CSV and JSON streams, and an Optuna study that Optuna itself loads back."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hpo.cli import app
from hpo.export import to_csv, to_json, to_optuna
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow, StudyRecord

SPEC = {
    "name": "exported",
    "objective": {"metric": "val_accuracy", "mode": "max"},
    "trainable": {"dataset": "digits", "model": "mlp"},
    "budget": {"trials": 5, "max_epochs": 3},
    "space": {
        "optimizer": {"choice": ["sgd", "momentum"]},
        "lr": {"loguniform": [1e-4, 0.3]},
        "momentum": {"uniform": [0.5, 0.95], "when": {"optimizer": ["momentum"]}},
        "hidden": {"int": [16, 64], "log": True},
        "dropout": {"uniform": [0.0, 0.5], "step": 0.05},
    },
}

# (params, per-epoch accuracy, final status)
TRIALS = [
    ({"optimizer": "sgd", "lr": 0.01, "hidden": 32, "dropout": 0.1}, [0.5, 0.7, 0.8], "completed"),
    (
        {"optimizer": "momentum", "momentum": 0.9, "lr": 0.05, "hidden": 64, "dropout": 0.0},
        [0.6, 0.85, 0.93],
        "completed",
    ),
    ({"optimizer": "sgd", "lr": 0.0001, "hidden": 16, "dropout": 0.45}, [0.1], "pruned"),
    (
        {"optimizer": "momentum", "momentum": 0.6, "lr": 0.2, "hidden": 20, "dropout": 0.2},
        [float("nan")],
        "failed",
    ),
    ({"optimizer": "sgd", "lr": 0.1, "hidden": 40, "dropout": 0.3}, [0.4, 0.8, 0.9], "completed"),
]


def _study(db_url: str) -> tuple[Repository, StudyRecord]:
    spec = load_spec(SPEC)
    repo = Repository(db_url)
    study = repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric="val_accuracy",
        objective_mode="max",
        n_trials_target=5,
    )
    for i, (params, accs, status) in enumerate(TRIALS):
        trial = repo.create_trial(
            study.id,
            config=spec.trial_config(params, seed=i),
            seed=i,
            ray_trial_id=f"r{i}",
            provenance={},
        )
        repo.record_results(
            [
                ResultRow(
                    trial.id,
                    e + 1,
                    {"val_accuracy": a, "val_loss": 1 - a if math.isfinite(a) else a},
                    a,
                )
                for e, a in enumerate(accs)
            ]
        )
        repo.finish_trial(trial.id, status, error="boom" if status == "failed" else None)
    return repo, repo.get_study(study.id)


def test_optuna_export_loads_back_with_the_same_best_trial(db_url: str, tmp_path: Path) -> None:
    repo, study = _study(db_url)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    name = to_optuna(repo, study, storage)
    loaded = optuna.load_study(study_name=name, storage=storage)
    assert loaded.direction == optuna.study.StudyDirection.MAXIMIZE
    assert len(loaded.trials) == 5
    ours = repo.best_trial(study.id)
    assert ours is not None
    assert loaded.best_trial.value == pytest.approx(ours.best_value)
    assert loaded.best_trial.params == {
        k: ours.config[k] for k in SPEC["space"] if k in ours.config
    }
    states = [t.state.name for t in sorted(loaded.trials, key=lambda t: t.user_attrs["hpo_number"])]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    second = next(t for t in loaded.trials if t.user_attrs["hpo_number"] == 2)
    assert second.intermediate_values == pytest.approx({1: 0.6, 2: 0.85, 3: 0.93})
    assert isinstance(second.distributions["lr"], optuna.distributions.FloatDistribution)
    assert second.distributions["lr"].log and second.distributions["hidden"].log
    # Optuna's own samplers accept the exported distributions: the study can be continued.
    continued = loaded.ask(second.distributions)
    assert set(continued.params) == set(second.distributions)
    repo.close()


def test_csv_has_one_row_per_trial(db_url: str) -> None:
    repo, study = _study(db_url)
    stream = io.StringIO()
    to_csv(repo, study, stream)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert [r["number"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[1]["momentum"] == "0.9" and rows[0]["momentum"] == ""
    assert rows[1]["status"] == "completed" and float(rows[1]["val_accuracy"]) == pytest.approx(
        0.93
    )
    repo.close()


def test_json_streams_every_trial_with_its_history(db_url: str) -> None:
    repo, study = _study(db_url)
    stream = io.StringIO()
    to_json(repo, study, stream)
    doc = json.loads(stream.getvalue())
    assert doc["name"] == "exported" and len(doc["trials"]) == 5
    assert [h["step"] for h in doc["trials"][0]["history"]] == [1, 2, 3]
    assert doc["trials"][1]["history"][2]["val_accuracy"] == pytest.approx(0.93)
    assert doc["trials"][3]["history"][0]["val_accuracy"] is None  # NaN is stored as NULL
    repo.close()


def test_cli_export_best_trials_studies(db_url: str, tmp_path: Path) -> None:
    repo, study = _study(db_url)
    runner = CliRunner()
    out = runner.invoke(app, ["export", str(study.id), "--db", db_url, "--format", "csv"])
    assert out.exit_code == 0 and out.stdout.count("\n") == 6
    best = runner.invoke(app, ["best", str(study.id), "--db", db_url, "--json"])
    assert json.loads(best.stdout)["number"] == 2
    trials = runner.invoke(
        app, ["trials", str(study.id), "--db", db_url, "--json", "--sort", "val_loss"]
    )
    assert [t["number"] for t in json.loads(trials.stdout)][:2] == [2, 5]
    studies = runner.invoke(app, ["studies", "--db", db_url, "--json"])
    assert json.loads(studies.stdout)[0]["trial_counts"]["completed"] == 3
    missing = runner.invoke(app, ["best", "999", "--db", db_url])
    assert missing.exit_code == 2 and "999" in missing.stderr
    bad = runner.invoke(app, ["export", str(study.id), "--db", db_url, "--format", "xml"])
    assert bad.exit_code == 2 and "--format" in bad.stderr
    repo.close()
