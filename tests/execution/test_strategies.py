"""Every strategy runs a real search on Ray and leaves every trial and metric in the database."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from hpo.space import expand_grid, parse_space
from hpo.spec import STRATEGIES
from tests.execution.conftest import branin_spec

pytestmark = pytest.mark.slow

DIGITS = {
    "name": "digits-small",
    "objective": {"metric": "val_accuracy", "mode": "max"},
    "trainable": {"dataset": "digits", "model": "mlp"},
    "budget": {"trials": 4, "max_epochs": 3, "min_epochs": 1, "concurrency": 2},
    "space": {
        "optimizer": {"choice": ["sgd", "momentum", "adam"]},
        "lr": {"loguniform": [1e-3, 0.1], "grid_points": 2},
        "momentum": {"uniform": [0.5, 0.95], "when": {"optimizer": ["momentum"]}, "grid_points": 2},
    },
    "fixed": {"hidden": 32, "preprocess": "standardize"},
}


def _metric_steps(repo: Any, trial_id: int) -> list[int]:
    return sorted({m.step for m in repo.trial_metrics(trial_id)})


# Every strategy on SQLite; on PostgreSQL the three whose samplers keep state differently
# (grid's finished product, gp's refits, bohb's model per budget). Storage is one code path
# for all strategies, and the suite's other PostgreSQL runs (resume, runners, budgets)
# cover the rest: the whole matrix twice cost a minute of a 15-minute budget.
MATRIX = [pytest.param("sqlite", s, id=f"sqlite-{s}") for s in sorted(STRATEGIES)] + [
    pytest.param("postgresql", s, id=f"postgresql-{s}", marks=pytest.mark.postgres)
    for s in ("bohb", "gp", "grid")
]


@pytest.mark.parametrize(("db_url", "strategy"), MATRIX, indirect=["db_url"])
def test_every_strategy_completes_a_digits_search(run_spec: Any, strategy: str) -> None:
    repo, study = run_spec({**DIGITS, "strategy": {"name": strategy, "seed": 1}})
    assert study.status == "completed"
    trials = repo.list_trials(study.id, limit=100)
    counts = Counter(t.status for t in trials)
    assert counts["running"] == 0 and counts["failed"] == 0
    assert counts["completed"] + counts["pruned"] == 4
    for t in trials:
        assert t.epochs_run >= 1
        assert _metric_steps(repo, t.id) == list(range(1, t.epochs_run + 1))
        names = {m.name for m in repo.trial_metrics(t.id)}
        assert {"train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= names
        assert t.provenance["torch_version"] and t.provenance["device"] == "cpu"
        assert t.provenance["hpo_version"] and t.provenance["node_id"]
        assert t.seed is not None and t.config["seed"] == t.seed
        # Conditional parameters appear only when their condition holds.
        assert ("momentum" in t.config) == (t.config["optimizer"] == "momentum")
    best = repo.best_trial(study.id)
    assert best is not None and best.best_value == max(
        t.best_value for t in trials if t.best_value is not None
    )


def test_grid_enumerates_exactly_the_product(run_spec: Any) -> None:
    spec = {
        **DIGITS,
        "strategy": {"name": "grid"},
        "budget": {**DIGITS["budget"], "trials": 100, "max_epochs": 1},
    }
    repo, study = run_spec(spec)
    configs = [t.config for t in repo.list_trials(study.id, limit=100)]
    space = parse_space(DIGITS["space"])
    expected = {tuple(sorted(c.items())) for c in expand_grid(space)}
    got = [tuple(sorted((k, v) for k, v in c.items() if k in space)) for c in configs]
    # sgd and adam: 2 lrs each; momentum: 2 lrs x 2 momenta.
    assert len(got) == len(expected) == 2 + 2 + 2 * 2
    assert set(got) == expected


@pytest.mark.parametrize("strategy", ["asha", "hyperband"])
def test_early_stopping_schedulers_prune(run_spec: Any, strategy: str) -> None:
    spec = branin_spec(
        strategy={"name": strategy, "seed": 3},
        budget={"trials": 12, "max_epochs": 9, "min_epochs": 1, "concurrency": 2},
    )
    repo, study = run_spec(spec)
    trials = repo.list_trials(study.id, limit=100)
    pruned = [t for t in trials if t.status == "pruned"]
    assert pruned, [(t.status, t.epochs_run) for t in trials]
    label = {"asha": "ASHA", "hyperband": "Hyperband"}[strategy]
    for t in pruned:
        assert 1 <= t.epochs_run < 9
        assert _metric_steps(repo, t.id) == list(range(1, t.epochs_run + 1))
        # Why, with its numbers: the trial's value at the rung (as stored) lost to the
        # rung's cut-off (minimizing: above it), which lies among the other trials' values.
        match = re.fullmatch(
            rf"stopped by {label} at the rung of epoch (\d+): value (\S+) above the rung's "
            r"cut-off (\S+) \(the best 1/3 of the (\d+) trials there go on\)",
            t.error or "",
        )
        assert match, t.error
        epoch, value, cut = int(match[1]), float(match[2]), float(match[3])
        # The message rounds to 4 significant digits: compare within that.
        slack = 1e-3 * max(abs(cut), abs(value))
        assert epoch == t.epochs_run and value >= cut - slack
        stored = {m.step: m.value for m in repo.trial_metrics(t.id) if m.name == "value"}
        assert value == pytest.approx(stored[epoch], rel=1e-3)
        others = [
            v
            for o in trials
            if o.id != t.id
            for m in repo.trial_metrics(o.id)
            if m.name == "value" and m.step == epoch
            for v in [m.value]
        ]
        assert min(others) - slack <= cut <= max(others) + slack
    assert all(t.epochs_run == 9 for t in trials if t.status == "completed")
    assert Counter(t.status for t in trials)["completed"] >= 1


def test_seeded_search_is_reproducible(run_spec: Any) -> None:
    spec = branin_spec(
        strategy={"sampler": "tpe", "seed": 11}, budget={"trials": 5, "concurrency": 1}
    )
    repo_a, a = run_spec({**spec, "name": "a"})
    repo_b, b = run_spec({**spec, "name": "b"})
    configs_a = [t.config for t in repo_a.list_trials(a.id)]
    configs_b = [t.config for t in repo_b.list_trials(b.id)]
    assert configs_a == configs_b
    assert [t.best_value for t in repo_a.list_trials(a.id)] == [
        t.best_value for t in repo_b.list_trials(b.id)
    ]


def test_failed_trials_are_recorded_with_their_error(run_spec: Any) -> None:
    spec = branin_spec(fixed={"fail_if_x1_above": 2.5}, budget={"trials": 6})
    repo, study = run_spec(spec)
    trials = repo.list_trials(study.id, limit=100)
    failed = [t for t in trials if t.status == "failed"]
    assert failed and all(t.config["x1"] > 2.5 for t in failed)
    assert all("above fail_if_x1_above" in (t.error or "") for t in failed)
    assert all(t.config["x1"] <= 2.5 for t in trials if t.status == "completed")
    assert study.status == "completed"


def test_events_tell_the_story(run_spec: Any) -> None:
    repo, study = run_spec(branin_spec(budget={"trials": 2}))
    kinds = [e.kind for e in repo.list_events(study.id, limit=100)]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert kinds.count("trial_started") == 2 and kinds.count("trial_completed") == 2
