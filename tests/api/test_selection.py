"""The dashboard's linked views over HTTP, on SQLite and PostgreSQL: /selection returns
exactly the listed trials (the table of a selection), /curves?numbers=… exactly their
curves, /curves always carries the running trials' partial curves, and a bad list of
numbers is refused naming `query.numbers` and why."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from api.dashboard.selection import MAX_SELECTION
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow, StudyRecord
from tests.api.support import live_server

SPEC = {
    "name": "selection",
    "objective": {"metric": "loss", "mode": "min"},
    "trainable": {"function": "hpo.examples.functions:branin"},
    "budget": {"trials": 8, "max_epochs": 3},
    "space": {"x": {"uniform": [0.0, 1.0]}},
}
RUNNING = 8  # the last trial still runs, after 2 of its 3 epochs


@pytest.fixture(scope="module")
def study(backend_url: str) -> StudyRecord:
    """Trials 1-7 completed with loss x + 1/epoch (x = number / 10); trial 8 running."""
    spec = load_spec(SPEC)
    with Repository(backend_url) as repo:
        study = repo.create_study(
            spec.name, spec.dump(), objective_metric="loss", objective_mode="min", n_trials_target=8
        )
        for number in range(1, 9):
            x = number / 10
            trial = repo.create_trial(
                study.id, config={"x": x}, seed=number, ray_trial_id=None, provenance={}
            )
            epochs = (1, 2) if number == RUNNING else (1, 2, 3)
            repo.record_results(
                [ResultRow(trial.id, e, {"loss": x + 1 / e}, x + 1 / e) for e in epochs]
            )
            if number != RUNNING:
                repo.finish_trial(trial.id, "completed")
        return repo.get_study(study.id)


@pytest.fixture(scope="module")
def http(backend_url: str, study: StudyRecord) -> Iterator[httpx.Client]:
    with (
        live_server(create_app(backend_url)) as url,
        httpx.Client(base_url=f"{url}/api/v1/studies/{study.id}", timeout=30) as client,
    ):
        yield client


def test_selection_is_exactly_the_listed_trials(http: httpx.Client) -> None:
    body = http.get("/selection", params={"numbers": "5,2,8,2,99"}).json()
    # By number, each once; 99 does not exist and is skipped.
    assert [t["number"] for t in body["data"]] == [2, 5, 8] and body["count"] == 3
    by_number = {t["number"]: t for t in body["data"]}
    assert by_number[2]["config"] == {"x": 0.2}
    assert by_number[2]["value"] == pytest.approx(0.2 + 1 / 3)
    assert by_number[8]["status"] == "running" and by_number[8]["epochs_run"] == 2
    assert by_number[5]["final_metrics"]["loss"] == pytest.approx(0.5 + 1 / 3)


def test_curves_of_listed_numbers(http: httpx.Client) -> None:
    body = http.get("/curves", params={"numbers": "3,1"}).json()
    assert [c["number"] for c in body["data"]] == [1, 3]
    assert body["data"][0]["values"] == pytest.approx([0.1 + 1, 0.1 + 1 / 2, 0.1 + 1 / 3])


def test_curves_always_carry_the_running_trials(http: httpx.Client) -> None:
    """Neither among the best nor sampled, the running trial's partial curve is there."""
    body = http.get("/curves", params={"top": 1, "sample": 0}).json()
    curves = {c["number"]: c for c in body["data"]}
    assert set(curves) == {1, RUNNING}  # the best (x = 0.1) and the running one
    assert curves[RUNNING]["status"] == "running"
    assert curves[RUNNING]["steps"] == [1, 2]
    assert curves[RUNNING]["values"] == pytest.approx([0.8 + 1, 0.8 + 1 / 2])


@pytest.mark.parametrize(
    ("path", "numbers", "reason"),
    [
        ("/selection", "", "separated by commas"),
        ("/selection", "1,,2", "separated by commas"),
        ("/selection", "1,abc", "'abc' is not a trial number"),
        ("/selection", "0", "'0' is not a trial number"),
        ("/selection", "-3", "'-3' is not a trial number"),
        ("/selection", "99999999999", "is not a trial number"),
        ("/selection", ",".join(str(n) for n in range(1, MAX_SELECTION + 2)), "at most"),
        ("/curves", "1;2", "is not a trial number"),
        ("/curves", ",".join(str(n) for n in range(1, 202)), "at most 200"),
    ],
)
def test_bad_numbers_name_the_field_and_reason(
    http: httpx.Client, path: str, numbers: str, reason: str
) -> None:
    response = http.get(path, params={"numbers": numbers})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(d["field"] == "query.numbers" and reason in d["message"] for d in detail), detail


def test_selection_needs_numbers(http: httpx.Client) -> None:
    response = http.get("/selection")
    assert response.status_code == 422
    assert any("numbers" in d["field"] for d in response.json()["detail"])


def test_selection_of_unknown_study_is_404(http: httpx.Client) -> None:
    root = str(http.base_url).rsplit("/studies/", 1)[0]
    response = http.get(f"{root}/studies/999999/selection", params={"numbers": "1"})
    assert response.status_code == 404
