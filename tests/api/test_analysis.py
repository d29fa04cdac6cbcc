"""The dashboard's analysis endpoints over HTTP: /points samples big studies but keeps the
best trials and an exact best-so-far, and carries every trial with a value with its status
(failed and running ones too); /curves reads any metric; /importance ranks the parameter
the objective depends on first and counts its completed and pruned trials."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow, StudyRecord
from tests.api.support import live_server

N_FINISHED = 60
SPEC = {
    "name": "analysis",
    "objective": {"metric": "loss", "mode": "min"},
    "trainable": {"function": "hpo.examples.functions:branin"},
    "budget": {"trials": N_FINISHED + 2, "max_epochs": 3},
    "space": {"x": {"uniform": [0.0, 1.0]}, "noise": {"uniform": [0.0, 1.0]}},
}


def _loss(x: float, noise: float) -> float:
    """Depends on x strongly and on `noise` only a little: importance must see that."""
    return (x - 0.3) ** 2 + 0.001 * noise


@pytest.fixture(scope="module")
def study(backend_url: str) -> StudyRecord:
    """60 finished trials (every fourth pruned), one failed and one still running."""
    rng = random.Random(3)
    spec = load_spec(SPEC)
    with Repository(backend_url) as repo:
        study = repo.create_study(
            spec.name,
            spec.dump(),
            objective_metric="loss",
            objective_mode="min",
            n_trials_target=N_FINISHED + 2,
        )
        for i in range(N_FINISHED + 2):
            params = {"x": rng.random(), "noise": rng.random()}
            trial = repo.create_trial(
                study.id, config=params, seed=i, ray_trial_id=None, provenance={}
            )
            loss = _loss(params["x"], params["noise"])
            rows = [
                ResultRow(trial.id, e, {"loss": loss + 1 / e, "lr": 0.1 / e}, loss + 1 / e)
                for e in (1, 2, 3)
            ]
            repo.record_results(rows)
            if i == N_FINISHED:
                repo.finish_trial(trial.id, "failed", error="boom")
            elif i < N_FINISHED:
                repo.finish_trial(trial.id, "pruned" if i % 4 == 3 else "completed")
        return repo.get_study(study.id)


@pytest.fixture(scope="module")
def http(backend_url: str, study: StudyRecord) -> Iterator[httpx.Client]:
    with (
        live_server(create_app(backend_url)) as url,
        httpx.Client(base_url=f"{url}/api/v1/studies/{study.id}", timeout=30) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def finished(backend_url: str, study: StudyRecord) -> dict[int, float]:
    """The one value by number of every completed or pruned trial, read straight from SQL."""
    with Repository(backend_url) as repo:
        return {
            t.number: t.objective_value
            for t in repo.iter_trials(study.id)
            if t.status in ("completed", "pruned") and t.objective_value is not None
        }


@pytest.fixture(scope="module")
def valued(backend_url: str, study: StudyRecord) -> dict[int, tuple[str, float, int]]:
    """(status, value, epochs_run) by number of every trial with a value, from SQL."""
    with Repository(backend_url) as repo:
        return {
            t.number: (t.status, t.objective_value, t.epochs_run)
            for t in repo.iter_trials(study.id)
            if t.objective_value is not None
        }


def test_points_small_limit_samples_but_keeps_the_best(
    http: httpx.Client, finished: dict[int, float], valued: dict[int, tuple[str, float, int]]
) -> None:
    body = http.get("/points", params={"limit": 20}).json()
    assert body["total"] == N_FINISHED + 2 == len(valued)  # the failed and running ones too
    numbers = [p["number"] for p in body["data"]]
    assert len(numbers) == 20 == len(set(numbers))
    assert numbers == sorted(numbers)
    assert body["best_shown"] == 5
    best_five = sorted(finished, key=lambda n: (finished[n], n))[:5]
    assert set(best_five) <= set(numbers)
    for point in body["data"]:
        status, value, epochs = valued[point["number"]]
        assert (point["status"], point["epochs_run"]) == (status, epochs)
        assert point["value"] == pytest.approx(value)
        assert set(point["config"]) == {"x", "noise"}
    # The same sample on every request (seeded by the study).
    again = http.get("/points", params={"limit": 20}).json()
    assert [p["number"] for p in again["data"]] == numbers


def test_points_best_so_far_is_exact_over_every_trial(
    http: httpx.Client, finished: dict[int, float]
) -> None:
    expected: list[tuple[int, float]] = []
    for number in sorted(finished):
        if not expected or finished[number] < expected[-1][1]:
            expected.append((number, finished[number]))
    for limit in (4, 1000):
        body = http.get("/points", params={"limit": limit}).json()
        got = [(s["number"], s["value"]) for s in body["best_so_far"]]
        assert [n for n, _ in got] == [n for n, _ in expected]
        assert [v for _, v in got] == pytest.approx([v for _, v in expected])


def test_points_under_the_limit_are_all_there(
    http: httpx.Client, valued: dict[int, tuple[str, float, int]]
) -> None:
    body = http.get("/points").json()
    assert [p["number"] for p in body["data"]] == sorted(valued)
    assert body["best_shown"] == body["total"] == N_FINISHED + 2
    statuses = {p["number"]: p["status"] for p in body["data"]}
    assert (statuses[N_FINISHED + 1], statuses[N_FINISHED + 2]) == ("failed", "running")
    assert sum(s == "pruned" for s in statuses.values()) == N_FINISHED // 4


def test_curves_of_any_metric(http: httpx.Client) -> None:
    # The best 3, a sample of 2 and the one running trial (always drawn, see test_selection).
    lr = http.get("/curves", params={"metric": "lr", "top": 3, "sample": 2}).json()
    assert lr["metric"] == "lr" and len(lr["data"]) == 6
    assert sum(c["status"] == "running" for c in lr["data"]) == 1
    for curve in lr["data"]:
        assert curve["steps"] == [1, 2, 3]
        assert curve["values"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    objective = http.get("/curves", params={"top": 2, "sample": 0}).json()
    assert objective["metric"] == "loss" and len(objective["data"]) == 3
    assert objective["best_number"] in {c["number"] for c in objective["data"]}
    unknown = http.get("/curves", params={"metric": "no_such_metric"}).json()
    assert unknown["data"] == []


def test_importance_ranks_the_parameter_that_matters(http: httpx.Client) -> None:
    body = http.get("/importance").json()
    assert body["n_trials"] == N_FINISHED
    # Every fourth finished trial was pruned: counted apart from the completed ones.
    assert body["counts"] == {"completed": N_FINISHED - N_FINISHED // 4, "pruned": N_FINISHED // 4}
    assert list(body["importances"]) == ["x", "noise"]
    assert math.isclose(sum(body["importances"].values()), 1.0, rel_tol=1e-6)
    assert body["importances"]["x"] > 0.8


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/points", {"limit": 0}, "limit"),
        ("/points", {"limit": 100_000}, "limit"),
        ("/points", {"limit": "many"}, "limit"),
        ("/curves", {"metric": ""}, "metric"),
        ("/curves", {"metric": "m" * 201}, "metric"),
        ("/curves", {"top": -1}, "top"),
        ("/curves", {"sample": 1000}, "sample"),
    ],
)
def test_bad_query_values_name_the_field(
    http: httpx.Client, path: str, params: dict[str, object], field: str
) -> None:
    response = http.get(path, params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(field in d["field"] for d in detail), detail


def test_unknown_study_is_404(http: httpx.Client) -> None:
    for path in ("/points", "/curves", "/importance"):
        root = str(http.base_url).rsplit("/studies/", 1)[0]
        response = http.get(f"{root}/studies/999999{path}")
        assert response.status_code == 404, path
