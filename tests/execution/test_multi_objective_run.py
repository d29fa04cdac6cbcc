"""A real multi-objective study: the example spec through `hpo run` (Ray, SQLite), ending
with a non-empty Pareto set whose trials are non-dominated and carry the values the
training core reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hpo.cli import app
from hpo.execution.driver import _warm_start
from hpo.execution.searcher import SamplerSearcher
from hpo.samplers import create_sampler
from hpo.spec import StudySpec, load_spec
from hpo.storage.repository import Repository, ResultRow

EXAMPLE = Path(__file__).parents[2] / "search_spaces" / "multi_objective_digits.yaml"


def _two_objective_spec() -> StudySpec:
    """A user function reporting `value` (min) and `cost` (max) each epoch."""
    return load_spec(
        {
            "name": "mo-searcher",
            "objective": [{"metric": "value", "mode": "min"}, {"metric": "cost", "mode": "max"}],
            "trainable": {"function": "hpo.examples.functions:branin"},
            "budget": {"trials": 4, "max_epochs": 3},
            "strategy": {"sampler": "nsga2", "scheduler": "fifo", "seed": 0},
            "space": {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}},
        }
    )


def test_the_searcher_tells_the_last_epochs_vector() -> None:
    spec = _two_objective_spec()
    sampler = create_sampler("nsga2", spec.space, mode=["min", "max"], seed=0)
    searcher = SamplerSearcher(sampler, spec)
    assert isinstance(searcher.suggest("t1"), dict)
    for epoch, value, cost in [(1, 5.0, 1.0), (2, 4.0, 3.0), (3, 4.5, 2.0)]:
        searcher.on_trial_result("t1", {"epoch": epoch, "value": value, "cost": cost})
    searcher.on_trial_complete("t1", {"epoch": 3, "value": 4.5, "cost": 2.0})
    (trial,) = sampler.study.trials  # type: ignore[attr-defined]
    assert trial.values == [4.5, 2.0]


def test_a_resumed_sampler_learns_the_stored_vectors(db_url: str) -> None:
    spec = _two_objective_spec()
    with Repository(db_url) as repo:
        study = repo.create_study(
            spec.name,
            spec.dump(),
            objective_metric="value",
            objective_mode="min",
            n_trials_target=4,
        )
        for i, (x1, value, cost) in enumerate([(1.0, 3.0, 7.0), (2.0, 2.0, 1.0)]):
            trial = repo.create_trial(
                study.id,
                config=spec.trial_config({"x1": x1, "x2": 1.0}, seed=i),
                seed=i,
                ray_trial_id=f"r{i}",
                provenance={},
            )
            repo.record_results([ResultRow(trial.id, 3, {"value": value, "cost": cost}, value)])
            repo.finish_trial(trial.id, "completed")
        sampler = create_sampler("nsga2", spec.space, mode=["min", "max"], seed=0)
        assert _warm_start(sampler, spec, repo, study.id) == (2, 2)
    told = [(t.params["x1"], t.values) for t in sampler.study.trials]  # type: ignore[attr-defined]
    assert told == [(1.0, [3.0, 7.0]), (2.0, [2.0, 1.0])]


@pytest.mark.slow
def test_the_example_runs_to_a_pareto_set(ray_session: None, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/hpo.db"
    runner = CliRunner()
    # Six trials: NSGA-II's first generation (population 4) and two of its children.
    ran = runner.invoke(app, ["run", str(EXAMPLE), "--db", db, "--trials", "6"])
    assert ran.exit_code == 0, ran.output
    assert "Pareto set" in ran.stdout

    best = runner.invoke(app, ["best", "1", "--db", db, "--json"])
    assert best.exit_code == 0, best.output
    doc = json.loads(best.stdout)
    assert [o["metric"] for o in doc["objectives"]] == ["val_accuracy", "param_count"]
    front = doc["pareto"]
    assert front, "a finished study has at least one non-dominated trial"

    with Repository(db) as repo:
        trials = repo.list_trials(1)
        assert len(trials) == 6 and {t.status for t in trials} == {"completed"}
        for t in trials:
            # The stored values are the last epoch's reports of both metrics.
            last = {m.name: m.value for m in repo.trial_metrics(t.id) if m.step == t.epochs_run}
            assert t.objective_values == [last["val_accuracy"], last["param_count"]]
            # The MLP's size in closed form: 64 inputs, `depth` layers of `hidden`, 10 classes.
            h, d = t.config["hidden"], t.config["depth"]
            assert last["param_count"] == 64 * h + h + (d - 1) * (h * h + h) + 10 * h + 10
    values = {t.number: t.objective_values for t in trials}
    numbers = {t["number"] for t in front}
    for t in front:
        assert t["values"] == values[t["number"]]
    # Non-dominated: no trial is as accurate and as small with one strictly better...
    for n in numbers:
        acc, size = values[n]  # type: ignore[misc]
        for m, (acc2, size2) in values.items():  # type: ignore[misc]
            assert not (acc2 >= acc and size2 <= size and (acc2, size2) != (acc, size)), (n, m)
    # ...and every trial left out is dominated by one in the set.
    for m, (acc2, size2) in values.items():  # type: ignore[misc]
        if m not in numbers:
            assert any(
                values[n][0] >= acc2 and values[n][1] <= size2  # type: ignore[index]
                for n in numbers
            )
