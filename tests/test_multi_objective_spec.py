"""Multi-objective specs: a list of objectives is accepted, round-trips, and every class of
bad input is refused with its field path and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpo.errors import SpecError
from hpo.spec import load_spec

EXAMPLE = Path(__file__).parent.parent / "search_spaces" / "multi_objective_digits.yaml"
ACC = {"metric": "val_accuracy", "mode": "max"}
SIZE = {"metric": "param_count", "mode": "min"}
TIME = {"metric": "train_seconds", "mode": "min"}


def spec(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "mo",
        "objective": [ACC, SIZE],
        "trainable": {"dataset": "digits", "model": "mlp"},
        "strategy": {"sampler": "nsga2", "scheduler": "fifo"},
        "space": {"lr": {"loguniform": [1e-3, 0.1]}, "hidden": {"int": [4, 64]}},
    }
    data.update(changes)
    return data


def errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(data)
    return {e.path: e.message for e in info.value.errors}


def test_the_example_loads_with_two_objectives() -> None:
    loaded = load_spec(EXAMPLE)
    assert loaded.multi_objective
    assert [(o.metric, o.mode) for o in loaded.objectives] == [
        ("val_accuracy", "max"),
        ("param_count", "min"),
    ]
    # The first objective is the one Ray, early stopping and progress follow.
    assert loaded.objective.metric == "val_accuracy"


def test_a_list_round_trips_and_one_objective_stays_a_mapping() -> None:
    several = load_spec(spec(objective=[ACC, SIZE, TIME]))
    dumped = several.dump()
    assert [o["metric"] for o in dumped["objective"]] == [
        "val_accuracy",
        "param_count",
        "train_seconds",
    ]
    assert load_spec(dumped) == several
    one = load_spec(spec(objective=ACC, strategy={"sampler": "tpe"}))
    assert not one.multi_objective
    assert one.dump()["objective"] == {**ACC, "value": "last"}


@pytest.mark.parametrize("sampler", ["nsga2", "motpe", "mogp", "random", "grid"])
def test_samplers_that_take_several_objectives(sampler: str) -> None:
    space = {"hidden": {"choice": [4, 8]}}
    loaded = load_spec(spec(strategy={"sampler": sampler}, space=space))
    assert loaded.strategy.sampler == sampler


def test_early_stopping_watches_the_first_learning_metric() -> None:
    cost_first = load_spec(spec(objective=[SIZE, ACC]))
    assert cost_first.base_config()["early_stopping_metric"] == "val_accuracy"
    costs_only = load_spec(spec(objective=[SIZE, TIME]))
    assert costs_only.base_config()["early_stopping_metric"] == "val_loss"


@pytest.mark.parametrize(
    ("objective", "path", "reason"),
    [
        ([ACC], "objective", "needs 2 to 8 (got 1)"),
        ([], "objective", "needs 2 to 8 (got 0)"),
        ([ACC, SIZE, TIME] * 3, "objective", "needs 2 to 8 (got 9)"),
        ([ACC, {"metric": "val_accuracy", "mode": "max"}], "objective.1.metric", "already"),
        (
            [ACC, {"metric": "val_loss", "mode": "min", "value": "best"}],
            "objective.1.value",
            "last epoch",
        ),
        ([ACC, {"metric": "param_count", "mode": "max"}], "objective.1.mode", "must be min"),
        ([ACC, {"metric": "val_rmse", "mode": "min"}], "objective.1.metric", "not reported"),
        ([ACC, {"metric": "loss", "mode": "upward"}], "objective.1.mode", "'min' or 'max'"),
        ([ACC, {"mode": "min"}], "objective.1.metric", "Field required"),
        ([ACC, "param_count"], "objective.1", "valid dictionary"),
    ],
)
def test_bad_objective_lists_name_the_field(objective: Any, path: str, reason: str) -> None:
    found = errors(spec(objective=objective))
    assert path in found, found
    assert reason in found[path]


def test_a_single_objective_keeps_its_paths() -> None:
    found = errors(spec(objective={"metric": "val_accuracy", "mode": "upward"}))
    assert set(found) == {"objective.mode"}


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_single_objective_samplers_are_refused(sampler: str) -> None:
    found = errors(spec(strategy={"sampler": sampler}))
    assert set(found) == {"strategy.sampler"}
    assert f"'{sampler}' learns one objective" in found["strategy.sampler"]
    assert "nsga2" in found["strategy.sampler"]


@pytest.mark.parametrize("scheduler", ["asha", "hyperband", "median"])
def test_schedulers_that_prune_by_one_metric_are_refused(scheduler: str) -> None:
    found = errors(spec(strategy={"sampler": "nsga2", "scheduler": scheduler}))
    assert set(found) == {"strategy.scheduler"}
    assert "use fifo" in found["strategy.scheduler"]


def test_a_shortcut_is_judged_by_its_pair() -> None:
    found = errors(spec(strategy="bohb"))  # tpe + hyperband
    assert set(found) == {"strategy.sampler", "strategy.scheduler"}


def test_nsga2_options_are_checked() -> None:
    found = errors(spec(strategy={"sampler": "nsga2", "options": {"population_size": 1}}))
    assert "must be >= 2" in found["strategy.options.population_size"]
    found = errors(spec(strategy={"sampler": "motpe", "options": {"population_size": 4}}))
    assert "unknown option" in found["strategy.options.population_size"]


def test_single_objective_studies_may_minimize_a_cost() -> None:
    loaded = load_spec(spec(objective=TIME, strategy={"sampler": "tpe"}))
    assert loaded.objective.metric == "train_seconds"
    assert loaded.base_config()["early_stopping_metric"] == "val_loss"
    found = errors(spec(objective={**TIME, "value": "best"}, strategy={"sampler": "tpe"}))
    assert set(found) == {"objective.value"} and "use last" in found["objective.value"]
