"""Trials over HTTP: one page sorted by any column or metric and filtered by status, and
one trial with its per-epoch history."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from hpo.storage.repository import Repository, StudyRecord
from tests.api.support import live_server, seed_study


@pytest.fixture(scope="module")
def study(backend_url: str) -> StudyRecord:
    with Repository(backend_url) as repo:
        return seed_study(repo, values=(3.0, 1.0, 2.0, 0.5))


@pytest.fixture(scope="module")
def http(backend_url: str, study: StudyRecord) -> Iterator[httpx.Client]:
    with (
        live_server(create_app(backend_url)) as url,
        httpx.Client(base_url=f"{url}/api/v1/studies/{study.id}", timeout=10) as client,
    ):
        yield client


def _numbers(http: httpx.Client, **params: object) -> list[int]:
    response = http.get("/trials", params=params)
    assert response.status_code == 200, response.text
    return [t["number"] for t in response.json()["data"]]


def test_paging(http: httpx.Client) -> None:
    page = http.get("/trials", params={"limit": 2}).json()
    assert page["count"] == 4
    assert [t["number"] for t in page["data"]] == [1, 2]
    assert _numbers(http, limit=2, offset=2) == [3, 4]
    assert _numbers(http, offset=10) == []


def test_sort_by_columns_and_metrics(http: httpx.Client) -> None:
    # Best values (seed_study): #1 3.0, #2 1.0, #3 2.0, #4 2.5 (pruned after one epoch).
    assert _numbers(http, sort="best_value") == [2, 3, 4, 1]
    assert _numbers(http, sort="best_value", order="desc") == [1, 4, 3, 2]
    assert _numbers(http, sort="number", order="desc") == [4, 3, 2, 1]
    assert _numbers(http, sort="aux", order="desc") == [4, 3, 2, 1]
    assert _numbers(http, sort="epochs_run", order="asc")[0] == 4
    # A metric nobody reported sorts every trial as missing, by number.
    assert _numbers(http, sort="no_such_metric") == [1, 2, 3, 4]


def test_sort_by_a_hyperparameter(http: httpx.Client) -> None:
    # x2 of trials 1-4 (seed_study): 3.0, 1.0, 2.0, 0.5.
    assert _numbers(http, sort="param:x2") == [4, 2, 3, 1]
    assert _numbers(http, sort="param:x2", order="desc") == [1, 3, 2, 4]
    response = http.get("/trials", params={"sort": "param:lr"})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "query.sort" and "'lr' is not a searched" in problem["message"]


def test_status_filter(http: httpx.Client) -> None:
    pruned = http.get("/trials", params={"status": "pruned"}).json()
    assert [t["number"] for t in pruned["data"]] == [4]
    assert pruned["count"] == 1
    assert http.get("/trials", params={"status": "running"}).json() == {"data": [], "count": 0}
    assert http.get("/trials", params={"status": "zombie"}).status_code == 422


def test_trial_detail_has_history_and_provenance(http: httpx.Client) -> None:
    trial = http.get("/trials/1").json()
    assert trial["config"] == {"x1": 0.0, "x2": 3.0}
    assert trial["provenance"] == {"hostname": "test"}
    assert [p["step"] for p in trial["history"]] == [1, 2, 3]
    assert trial["history"][0]["values"] == {"aux": 0.0, "epoch": 1.0, "value": 5.0}
    assert trial["final_metrics"]["value"] == 3.0
    assert http.get("/trials/99").status_code == 404
