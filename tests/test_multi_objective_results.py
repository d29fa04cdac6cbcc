"""The Pareto set of a multi-objective study, on hand-made points and stored trials: the
pure function against a brute-force definition, then the repository, `hpo best`, the API
and the exports (CSV, JSON, Optuna) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path

import httpx
import optuna
import pytest
from typer.testing import CliRunner

from api.app import create_app
from hpo.cli import app
from hpo.config import Settings
from hpo.export import to_csv, to_json, to_optuna
from hpo.pareto import pareto_indices
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow, StudyRecord
from tests.api.support import live_server


def brute_force_front(points: Sequence[Sequence[float]], modes: Sequence[str]) -> list[int]:
    """The definition, written out: i is kept unless some j is no worse everywhere and
    strictly better somewhere (values negated for "max")."""
    sign = [1 if m == "min" else -1 for m in modes]
    kept = []
    for i, p in enumerate(points):
        a = [s * v for s, v in zip(sign, p, strict=True)]
        beaten = False
        for j, q in enumerate(points):
            b = [s * v for s, v in zip(sign, q, strict=True)]
            if j != i and all(y <= x for x, y in zip(a, b, strict=True)) and b != a:
                beaten = True
        if not beaten:
            kept.append(i)
    return kept


def test_hand_made_front() -> None:
    # (accuracy max, size min): 0 and 1 trade off; 2 is beaten by 1; 3 ties 1 (both kept);
    # 4 is beaten by 0 on size at equal accuracy.
    points = [(0.9, 100.0), (0.8, 10.0), (0.7, 20.0), (0.8, 10.0), (0.9, 150.0)]
    assert pareto_indices(points, ["max", "min"]) == [0, 1, 3]
    assert pareto_indices(points, ["min", "min"]) == [1, 2, 3]
    assert pareto_indices([], ["min", "min"]) == []
    assert pareto_indices([(1.0, 1.0)], ["min", "max"]) == [0]


@pytest.mark.parametrize("n_objectives", [2, 3, 4])
def test_random_points_match_the_brute_force_front(n_objectives: int) -> None:
    rng = random.Random(n_objectives)
    for modes in itertools.islice(itertools.product(["min", "max"], repeat=n_objectives), 4):
        for _ in range(20):
            # A coarse grid of values makes ties and duplicates common.
            points = [
                tuple(float(rng.randint(0, 5)) for _ in range(n_objectives))
                for _ in range(rng.randint(1, 40))
            ]
            assert pareto_indices(points, list(modes)) == brute_force_front(points, modes)


# --- a stored study ---------------------------------------------------------------------

SPEC = {
    "name": "mo-results",
    "objective": [
        {"metric": "val_accuracy", "mode": "max"},
        {"metric": "param_count", "mode": "min"},
    ],
    "trainable": {"dataset": "digits", "model": "mlp"},
    "budget": {"trials": 6, "max_epochs": 2},
    "strategy": {"sampler": "nsga2", "scheduler": "fifo"},
    "space": {"hidden": {"int": [4, 256]}},
}
# (hidden, accuracy per epoch, param count, status). The front is trials 1, 2 and 4:
# 3 is beaten by 2, 5 failed, 6 was stopped before its budget (pruned), however good.
TRIALS = [
    (128, [0.80, 0.95], 25_000.0, "completed"),
    (16, [0.70, 0.90], 1_200.0, "completed"),
    (32, [0.85, 0.88], 2_400.0, "completed"),
    (4, [0.40, 0.60], 300.0, "completed"),
    (8, [float("nan")], 600.0, "failed"),
    (64, [0.99], 10.0, "pruned"),
]
FRONT = [1, 2, 4]


def _study(db_url: str) -> tuple[Repository, StudyRecord]:
    spec = load_spec(SPEC)
    repo = Repository(db_url)
    study = repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric="val_accuracy",
        objective_mode="max",
        n_trials_target=6,
    )
    for i, (hidden, accs, size, status) in enumerate(TRIALS):
        trial = repo.create_trial(
            study.id,
            config=spec.trial_config({"hidden": hidden}, seed=i),
            seed=i,
            ray_trial_id=f"r{i}",
            provenance={},
        )
        repo.record_results(
            [
                ResultRow(trial.id, e + 1, {"val_accuracy": a, "param_count": size}, a)
                for e, a in enumerate(accs)
            ]
        )
        repo.finish_trial(trial.id, status, error="boom" if status == "failed" else None)
    return repo, repo.get_study(study.id)


def test_trials_keep_the_last_epochs_value_of_each_objective(db_url: str) -> None:
    repo, study = _study(db_url)
    values = {t.number: t.objective_values for t in repo.list_trials(study.id)}
    assert values[1] == pytest.approx([0.95, 25_000.0])
    assert values[3] == pytest.approx([0.88, 2_400.0])
    assert values[5] == [None, 600.0]
    # The first objective stays the study's one value (what Ray and `best_value` follow).
    assert repo.best_trial(study.id).number == 1  # type: ignore[union-attr]
    repo.close()


def test_the_pareto_set_is_the_non_dominated_completed_trials(db_url: str) -> None:
    repo, study = _study(db_url)
    pareto = repo.pareto_trials(study.id)
    assert [t.number for t in pareto] == FRONT
    completed = [(t[1][-1], t[2]) for t in TRIALS if t[3] == "completed"]
    assert [i + 1 for i in brute_force_front(completed, ["max", "min"])] == FRONT
    repo.close()


def test_hpo_best_prints_the_pareto_set(db_url: str) -> None:
    repo, study = _study(db_url)
    runner = CliRunner()
    result = runner.invoke(app, ["best", str(study.id), "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["objectives"] == [
        {"metric": "val_accuracy", "mode": "max"},
        {"metric": "param_count", "mode": "min"},
    ]
    assert [t["number"] for t in doc["pareto"]] == FRONT
    assert doc["pareto"][0]["values"] == pytest.approx([0.95, 25_000.0])
    assert doc["pareto"][0]["reproduce"].startswith(f"hpo train --trial {study.id}/1")
    text = runner.invoke(app, ["best", str(study.id), "--db", db_url])
    assert text.exit_code == 0 and "Pareto set: 3 trial(s)" in text.stdout
    repo.close()


def test_exports_carry_every_objective(db_url: str, tmp_path: Path) -> None:
    repo, study = _study(db_url)
    stream = io.StringIO()
    to_csv(repo, study, stream)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert float(rows[0]["value.val_accuracy"]) == pytest.approx(0.95)
    assert float(rows[0]["value.param_count"]) == pytest.approx(25_000.0)
    assert rows[4]["value.val_accuracy"] == ""  # failed: no finite value
    stream = io.StringIO()
    to_json(repo, study, stream)
    doc = json.loads(stream.getvalue())
    assert doc["trials"][2]["values"] == pytest.approx([0.88, 2_400.0])

    storage = f"sqlite:///{tmp_path}/optuna.db"
    name = to_optuna(repo, study, storage)
    loaded = optuna.load_study(study_name=name, storage=storage)
    assert [d.name for d in loaded.directions] == ["MAXIMIZE", "MINIMIZE"]
    by_number = {t.user_attrs["hpo_number"]: t for t in loaded.trials}
    assert by_number[2].values == pytest.approx([0.90, 1_200.0])
    assert [by_number[n].state.name for n in range(1, 7)] == [
        "COMPLETE",
        "COMPLETE",
        "COMPLETE",
        "COMPLETE",
        "FAIL",
        "PRUNED",
    ]
    # Optuna's own Pareto front agrees with ours.
    assert sorted(t.user_attrs["hpo_number"] for t in loaded.best_trials) == FRONT
    repo.close()


def test_the_api_serves_the_pareto_set(db_url: str) -> None:
    repo, study = _study(db_url)
    server = create_app(db_url, settings=Settings())
    with live_server(server) as url, httpx.Client(base_url=url + "/api/v1", timeout=10) as http:
        pareto = http.get(f"/studies/{study.id}/pareto")
        assert pareto.status_code == 200, pareto.text
        doc = pareto.json()
        assert [t["number"] for t in doc["pareto"]] == FRONT
        assert doc["params"] == ["hidden"]
        assert doc["pareto"][1]["values"] == pytest.approx([0.90, 1_200.0])
        trials = http.get(f"/studies/{study.id}/trials").json()["data"]
        assert trials[2]["values"] == pytest.approx([0.88, 2_400.0])
        assert http.get("/studies/999/pareto").status_code == 404
        # Submitting: a list of objectives is taken; a sampler of one objective is refused.
        created = http.post("/studies", json=SPEC)
        assert created.status_code == 201, created.text
        assert [o["metric"] for o in created.json()["spec"]["objective"]] == [
            "val_accuracy",
            "param_count",
        ]
        refused = http.post("/studies", json={**SPEC, "strategy": {"sampler": "tpe"}})
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["detail"]] == ["strategy.sampler"]
        remote = CliRunner().invoke(app, ["best", str(study.id), "--server", url, "--json"])
        assert remote.exit_code == 0, remote.output
        assert [t["number"] for t in json.loads(remote.stdout)["pareto"]] == FRONT
        shown = CliRunner().invoke(app, ["best", str(study.id), "--server", url])
        assert shown.exit_code == 0 and "Pareto set: 3 trial(s)" in shown.stdout
        page = httpx.get(f"{url}/studies/{study.id}")
        assert page.status_code == 200 and 'id="pareto"' in page.text
        assert httpx.get(f"{url}/static/pareto.js").status_code == 200
    repo.close()
