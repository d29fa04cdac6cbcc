"""Warm starts: points evaluated first, an earlier study learned from before the first ask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hpo.errors import SpecError
from hpo.samplers import create_sampler
from hpo.samplers.bohb import BOHBSampler
from hpo.samplers.enqueued import Enqueued
from hpo.spec import load_spec
from hpo.storage.repository import Repository, StudyRecord
from hpo.warm_start import from_study_errors, learn_from_study
from tests.execution.conftest import branin_spec

POINTS = [{"x1": 3.0, "x2": 2.0}, {"x1": -5.0, "x2": 15.0}, {"x1": 9.5, "x2": 2.5}]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    repository = Repository(f"sqlite:///{tmp_path}/hpo.db")
    yield repository
    repository.close()


def run(repo: Repository, data: dict[str, Any]) -> StudyRecord:
    from hpo.execution.driver import run_study

    spec = load_spec(data)
    study = repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric=spec.objective.metric,
        objective_mode=spec.objective.mode,
        n_trials_target=spec.budget.trials,
    )
    return run_study(repo, study.id)


def configs_by_number(repo: Repository, study_id: int) -> list[dict[str, Any]]:
    trials = sorted(repo.iter_trials(study_id), key=lambda t: t.number)
    return [{k: t.config[k] for k in ("x1", "x2")} for t in trials]


# --- bad input, refused at load with the field named ---------------------------------


def warm_spec(warm: Any, **extra: Any) -> dict[str, Any]:
    data = branin_spec(**extra)
    data["space"] = {
        **data["space"],
        "opt": {"choice": ["a", "b"]},
        "m": {"uniform": [0.0, 1.0], "when": {"opt": ["b"]}},
    }
    data["strategy"] = {**data["strategy"], "warm_start": warm}
    return data


GOOD = {"x1": 0.0, "x2": 1.0, "opt": "a"}


@pytest.mark.parametrize(
    ("warm", "field", "words"),
    [
        ({"points": [{**GOOD, "lr": 0.1}]}, "strategy.warm_start.points.0.lr", "not a parameter"),
        ({"points": [{**GOOD, "x1": 11.0}]}, "strategy.warm_start.points.0.x1", "outside [-5"),
        ({"points": [{**GOOD, "opt": "c"}]}, "strategy.warm_start.points.0.opt", "not one of"),
        ({"points": [{**GOOD, "x2": "high"}]}, "strategy.warm_start.points.0.x2", "not a number"),
        ({"points": [{**GOOD, "m": 0.5}]}, "strategy.warm_start.points.0.m", "inactive"),
        ({"points": [GOOD, {"x1": 0.0, "opt": "b"}]}, "strategy.warm_start.points.1.x2", "missing"),
        (
            {"points": [{"x1": 0.0, "x2": 1.0, "opt": "b"}]},
            "strategy.warm_start.points.0.m",
            "missing",
        ),
        ({"points": [GOOD] * 7}, "strategy.warm_start.points", "budget.trials is 6"),
        ({"points": {"x1": 0.0}}, "strategy.warm_start.points", "list"),
        ({"from_study": 0}, "strategy.warm_start.from_study", "greater than or equal to 1"),
        ({"from_study": "twelve"}, "strategy.warm_start.from_study", "integer"),
        ({"form_study": 3}, "strategy.warm_start.form_study", ""),
    ],
)
def test_bad_warm_start_is_refused_naming_the_field(warm: Any, field: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        load_spec(warm_spec(warm))
    messages = {e.path: e.message for e in err.value.errors}
    assert field in messages, messages
    assert words in messages[field]


def test_good_points_load_and_round_trip() -> None:
    spec = load_spec(warm_spec({"points": [GOOD, {"x1": 1, "x2": 2.0, "opt": "b", "m": 0.3}]}))
    assert spec.strategy.warm_start is not None
    assert load_spec(spec.dump()) == spec


# --- points first, for every sampler -------------------------------------------------


@pytest.mark.parametrize("name", ["random", "tpe", "gp", "bohb", "grid"])
def test_points_come_first_in_order_then_the_sampler(name: str) -> None:
    spec = load_spec(
        branin_spec(
            space={
                "x1": {"uniform": [-5, 10], "grid_points": 4},
                "x2": {"uniform": [0, 15], "grid_points": 2},
            }
        )
    )
    sampler = Enqueued(create_sampler(name, spec.space, mode="min", seed=0), POINTS[:2])
    asked = [sampler.ask(f"k{i}") for i in range(5)]
    assert asked[:2] == POINTS[:2]
    assert all(a is not None and sampler.fits(a) for a in asked)


def test_a_grid_skips_configs_its_points_already_ran() -> None:
    space = load_spec(
        branin_spec(space={"x1": {"grid": [1.0, 2.0, 3.0]}, "x2": {"grid": [0.0, 5.0]}})
    ).space
    points = [{"x1": 2.0, "x2": 5.0}, {"x1": 1.0, "x2": 0.0}]
    sampler = Enqueued(create_sampler("grid", space, mode="min", seed=0), points)
    seen = []
    while (config := sampler.ask(f"k{len(seen)}")) is not None:
        seen.append((config["x1"], config["x2"]))
    assert seen[:2] == [(2.0, 5.0), (1.0, 0.0)]
    assert sorted(seen) == sorted((a, b) for a in (1.0, 2.0, 3.0) for b in (0.0, 5.0))
    assert sampler.finished


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "grid"])
def test_hpo_run_evaluates_the_points_first(
    ray_session: None, repo: Repository, tmp_path: Path, sampler: str
) -> None:
    space = {
        "x1": {"uniform": [-5, 10], "grid_points": 4},
        "x2": {"uniform": [0, 15], "grid_points": 2},
    }
    points = [{"x1": 0.0, "x2": 15.0}, {"x1": 10.0, "x2": 0.0}] if sampler == "grid" else POINTS
    data = branin_spec(space=space, budget={"trials": 5, "concurrency": 1})
    data["strategy"] = {"sampler": sampler, "seed": 0, "warm_start": {"points": points}}
    path = tmp_path / "spec.yaml"
    path.write_text(load_spec(data).to_yaml())
    from hpo.cli import app

    result = CliRunner().invoke(app, ["run", str(path), "--db", repo.url, "--json"])
    assert result.exit_code == 0, result.output
    (study,) = repo.list_studies()
    assert study.status == "completed"
    configs = configs_by_number(repo, study.id)
    assert configs[: len(points)] == points
    if sampler == "grid":  # no config twice: the grid skipped the points it holds
        assert len({tuple(c.values()) for c in configs}) == len(configs)


# --- from_study ----------------------------------------------------------------------


@pytest.mark.slow
def test_from_study_is_learned_before_the_first_ask(ray_session: None, repo: Repository) -> None:
    first = run(repo, branin_spec(budget={"trials": 6, "concurrency": 2}))
    assert first.status == "completed"
    counts = repo.count_trials(first.id)
    finished = counts["completed"] + counts["pruned"]

    data = branin_spec()
    data["strategy"] = {"sampler": "bohb", "warm_start": {"from_study": first.id}}
    spec = load_spec(data)
    sampler = create_sampler("bohb", spec.space, mode="min", seed=0)
    assert isinstance(sampler, BOHBSampler)
    assert learn_from_study(sampler, repo, spec) == finished
    # Every finished trial ran 4 epochs: one observation per epoch and one at full budget.
    for budget in (1.0, 2.0, 3.0, 4.0, float("inf")):
        assert sampler.observations(budget) == finished
    assert sampler.ask("first") is not None and sampler.model_budget == float("inf")

    tpe = create_sampler("tpe", spec.space, mode="min", seed=0)
    learn_from_study(tpe, repo, spec)
    assert len(tpe.study.trials) == finished  # type: ignore[attr-defined]

    second = run(repo, data)
    assert second.status == "completed"
    events = [e.message for e in repo.list_events(second.id, kind="warm_start")]
    assert events == [f"learned from {finished} finished trial(s) of study {first.id}"]


def store(repo: Repository, data: dict[str, Any]) -> StudyRecord:
    spec = load_spec(data)
    return repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric=spec.objective.metric,
        objective_mode=spec.objective.mode,
        n_trials_target=spec.budget.trials,
    )


def test_an_incompatible_earlier_study_is_refused_naming_the_field(repo: Repository) -> None:
    earlier = store(repo, branin_spec())
    data = branin_spec(
        space={"x1": {"choice": [1.0, 2.0]}, "x3": {"uniform": [0, 1]}},
        objective={"metric": "value", "mode": "max"},
    )
    data["strategy"] = {"sampler": "tpe", "warm_start": {"from_study": earlier.id}}
    errors = {(e.path, e.message) for e in from_study_errors(repo, load_spec(data))}
    field = "strategy.warm_start.from_study"
    assert (field, f"study {earlier.id} searches 'x2', which this space lacks") in errors
    assert (field, f"study {earlier.id} optimizes value (min), this one value (max)") in errors
    assert ("space.x3", f"not searched by study {earlier.id} ({field})") in errors
    assert ("space.x1", f"a choice here but a uniform in study {earlier.id} ({field})") in errors
    assert len(errors) == 4

    missing = branin_spec()
    missing["strategy"] = {"warm_start": {"from_study": 999}}
    assert [(e.path, e.message) for e in from_study_errors(repo, load_spec(missing))] == [
        (field, "no study with id 999")
    ]


def test_submit_and_hpo_run_refuse_an_incompatible_earlier_study(
    repo: Repository, tmp_path: Path
) -> None:
    from hpo import service
    from hpo.cli import app

    earlier = store(repo, branin_spec())
    data = branin_spec(space={"x1": {"uniform": [-5, 10]}})
    data["strategy"] = {"warm_start": {"from_study": earlier.id}}
    with pytest.raises(SpecError, match="searches 'x2'"):
        service.submit_study(repo, load_spec(data), owner=None)
    # Another user's study is reported as missing.
    ok = branin_spec()
    ok["strategy"] = {"warm_start": {"from_study": earlier.id}}
    with pytest.raises(SpecError, match=f"no study with id {earlier.id}"):
        service.submit_study(repo, load_spec(ok), owner="someone")
    assert service.submit_study(repo, load_spec(ok), owner=None).status == "queued"

    path = tmp_path / "spec.yaml"
    path.write_text(load_spec(data).to_yaml())
    before = len(repo.list_studies())
    result = CliRunner().invoke(app, ["run", str(path), "--db", repo.url])
    assert result.exit_code == 2, result.output
    assert "strategy.warm_start.from_study" in result.output
    assert len(repo.list_studies()) == before  # refused before a study was created


def test_a_points_result_reaches_the_wrapped_sampler() -> None:
    space = load_spec(branin_spec()).space
    tpe = create_sampler("tpe", space, mode="min", seed=0)
    sampler = Enqueued(tpe, POINTS[:1])
    assert sampler.ask("p") == POINTS[0]
    sampler.tell("p", 1.5, history=[(1, 2.0), (2, 1.5)])
    (trial,) = tpe.study.trials  # type: ignore[attr-defined]
    assert trial.params == POINTS[0] and trial.value == 1.5

    bohb = create_sampler("bohb", space, mode="min", seed=0)
    assert isinstance(bohb, BOHBSampler)
    sampler = Enqueued(bohb, POINTS[:1])
    sampler.ask("p")
    other = sampler.ask("q")
    sampler.report("q", 1, 0.5)  # the sampler's own trial: reported as it runs
    sampler.tell("p", None, state="pruned", history=[(1, 2.0)])
    assert other is not None and bohb.observations(1) == 2


def test_a_resumed_study_runs_only_the_points_not_yet_proposed(repo: Repository) -> None:
    from hpo.execution.driver import _start_warm

    data = branin_spec()
    data["strategy"] = {"sampler": "random", "warm_start": {"points": POINTS}}
    spec = load_spec(data)
    study = store(repo, data)
    sampler = create_sampler("random", spec.space, mode="min", seed=0)
    resumed = _start_warm(sampler, spec, repo, study.id, 2, study.lease_token)
    assert resumed.ask("a") == POINTS[2]
    assert resumed.ask("b") not in POINTS
    assert _start_warm(sampler, spec, repo, study.id, 3, study.lease_token) is sampler


def test_a_driver_whose_earlier_study_vanished_fails_the_study_naming_the_field(
    repo: Repository,
) -> None:
    from hpo.execution.driver import run_study

    data = branin_spec()
    data["strategy"] = {"sampler": "tpe", "warm_start": {"from_study": 999}}
    study = store(repo, data)  # stored directly: as if study 999 was deleted since submit
    final = run_study(repo, study.id)
    assert final.status == "failed"
    assert final.error == "warm start refused: strategy.warm_start.from_study: no study with id 999"
    assert repo.count_trials(study.id)["completed"] == 0
