"""Studies over HTTP with auth disabled: submit, read, list with paging and filters,
cancel, delete, best, export and the live events stream."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from hpo import service
from hpo.client import Client
from hpo.config import Settings
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow
from tests.api.support import BRANIN_SPEC, BRANIN_YAML, live_server, seed_study


@pytest.fixture(scope="module")
def repo(backend_url: str) -> Iterator[Repository]:
    with Repository(backend_url) as repo:
        yield repo


@pytest.fixture(scope="module")
def base_url(backend_url: str, repo: Repository) -> Iterator[str]:
    app = create_app(backend_url, settings=Settings(allowed_modules=("hpo.examples",)))
    app.state.events_poll_s = 0.05
    with live_server(app) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url + "/api/v1", timeout=10) as client:
        yield client


def test_submit_json_then_visible(http: httpx.Client) -> None:
    created = http.post("/studies", json=BRANIN_SPEC)
    assert created.status_code == 201, created.text
    study = created.json()
    assert study["status"] == "queued"
    assert study["name"] == "branin-api"
    assert study["owner"] is None
    assert study["strategy"] == {"sampler": "random", "scheduler": "fifo"}
    got = http.get(f"/studies/{study['id']}").json()
    assert got["status"] == "queued"
    assert got["trial_counts"] == {"running": 0, "completed": 0, "pruned": 0, "failed": 0}
    assert got["best_trial"] is None
    assert got["spec"]["space"] == BRANIN_SPEC["space"]


def test_submit_yaml_with_overrides(http: httpx.Client) -> None:
    created = http.post(
        "/studies",
        content=BRANIN_YAML,
        headers={"Content-Type": "application/yaml"},
        params={"strategy": "tpe", "trials": 7},
    )
    assert created.status_code == 201, created.text
    study = created.json()
    assert study["trials_target"] == 7
    assert study["strategy"] == {"sampler": "tpe", "scheduler": "fifo"}


def test_list_pages_and_filters(http: httpx.Client, repo: Repository) -> None:
    ids = [seed_study(repo, owner="pager", finish=i % 2 == 0).id for i in range(5)]
    first = http.get("/studies", params={"owner": "pager", "limit": 2}).json()
    assert first["count"] == 5
    assert [s["id"] for s in first["data"]] == ids[::-1][:2]
    rest = http.get("/studies", params={"owner": "pager", "limit": 2, "offset": 2}).json()
    assert [s["id"] for s in rest["data"]] == ids[::-1][2:4]
    done = http.get("/studies", params={"owner": "pager", "status": "completed"}).json()
    assert sorted(s["id"] for s in done["data"]) == ids[::2]
    assert done["count"] == 3
    assert http.get("/studies", params={"limit": 501}).status_code == 422
    assert http.get("/studies", params={"status": "sleeping"}).status_code == 422


def test_best_and_export(http: httpx.Client, repo: Repository) -> None:
    study = seed_study(repo)
    best = http.get(f"/studies/{study.id}/best").json()
    assert best["number"] == 2 and best["best_value"] == 1.0
    assert best["config"] == {"x1": 1.0, "x2": 1.0}
    detail = http.get(f"/studies/{study.id}").json()
    assert detail["best_trial"]["number"] == 2
    assert detail["trial_counts"]["completed"] == 2 and detail["trial_counts"]["pruned"] == 1
    table = http.get(f"/studies/{study.id}/export", params={"format": "csv"})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    assert len(table.text.strip().splitlines()) == 4
    exported = http.get(f"/studies/{study.id}/export").json()
    assert exported is not None
    fresh = http.post("/studies", json=BRANIN_SPEC).json()
    missing = http.get(f"/studies/{fresh['id']}/best")
    assert missing.status_code == 404
    assert "no finished trial" in missing.json()["detail"][0]["message"]


def test_cancel_and_delete(http: httpx.Client, repo: Repository) -> None:
    queued = http.post("/studies", json=BRANIN_SPEC).json()
    cancelled = http.post(f"/studies/{queued['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = http.post(f"/studies/{queued['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"][0]["message"]
    assert http.delete(f"/studies/{queued['id']}").status_code == 204
    assert http.get(f"/studies/{queued['id']}").status_code == 404

    running = seed_study(repo, finish=False)
    refused = http.delete(f"/studies/{running.id}")
    assert refused.status_code == 409
    assert http.get(f"/studies/{running.id}").json()["status"] == "running"


def test_unknown_ids_are_404_json(http: httpx.Client) -> None:
    for path in (
        "/studies/999999",
        "/studies/999999/best",
        "/studies/999999/trials",
        "/studies/999999/trials/1",
        "/studies/999999/events",
    ):
        response = http.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"][0]["message"], path
    assert http.post("/studies/999999/cancel").status_code == 404
    assert http.delete("/studies/999999").status_code == 404
    assert http.get("/nowhere").status_code == 404
    assert http.get("/studies/abc").status_code == 422


def _read_events(http: httpx.Client, study_id: int, last: int | None = None) -> list[dict]:
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    with http.stream("GET", f"/studies/{study_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events, current = [], {}
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                current = {}
                continue
            field, _, value = line.partition(": ")
            current[field] = value
    return events


def test_events_stream_and_resume(http: httpx.Client, repo: Repository) -> None:
    study = seed_study(repo)
    events = _read_events(http, study.id)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert kinds.count("trial_started") == 3
    first = json.loads(events[0]["data"])
    assert first["id"] == int(events[0]["id"]) and first["kind"] == "started"
    resumed = _read_events(http, study.id, last=int(events[3]["id"]))
    assert [e["id"] for e in resumed] == [e["id"] for e in events[4:]]
    # Resuming after the terminal event still ends the stream, with the study's status.
    tail = _read_events(http, study.id, last=int(events[-1]["id"]))
    assert [e["event"] for e in tail] == ["completed"] and "id" not in tail[0]


def test_events_follow_a_live_study(base_url: str, repo: Repository) -> None:
    study = seed_study(repo, values=(), finish=False)

    def finish_later() -> None:
        time.sleep(0.3)
        repo.add_event(study.id, "trial_started", "late trial")
        repo.set_study_status(study.id, "completed")
        repo.add_event(study.id, "completed", "study completed")

    writer = threading.Thread(target=finish_later)
    writer.start()
    with Client(base_url) as client:
        kinds = [e.kind for e in client.events(study.id)]
    writer.join()
    assert kinds == ["started", "trial_started", "completed"]


def test_healthz(base_url: str) -> None:
    for path in ("/healthz", "/api/v1/healthz"):
        response = httpx.get(base_url + path)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


def test_csv_export_tells_a_parameter_from_a_metric_of_the_same_name(
    http: httpx.Client, repo: Repository
) -> None:
    """`lr` searched and `lr` reported (the schedule's last value): two columns, each
    with its own value; a parameter named like a trial column is prefixed too."""
    spec = load_spec(
        {
            **BRANIN_SPEC,
            "name": "lr-twice",
            "space": {"lr": {"loguniform": [1e-4, 1.0]}, "status": {"choice": ["a", "b"]}},
        }
    )
    study = service.submit_study(repo, spec, owner=None)
    trial = repo.create_trial(
        study.id, config={"lr": 0.1, "status": "b"}, seed=0, ray_trial_id=None, provenance={}
    )
    repo.record_results([ResultRow(trial.id, 1, {"lr": 0.025, "value": 3.0}, 3.0)])
    repo.finish_trial(trial.id, "completed")
    answer = http.get(f"/studies/{study.id}/export", params={"format": "csv"})
    header, row = list(csv.reader(io.StringIO(answer.text)))
    assert len(header) == len(set(header)), header
    values = dict(zip(header, row, strict=True))
    assert values["param.lr"] == "0.1" and values["metric.lr"] == "0.025"
    assert values["status"] == "completed" and values["param.status"] == "b"
    assert values["value"] == "3.0"


def test_options_and_405_list_every_method_of_the_path(http: httpx.Client) -> None:
    studies = http.options("/studies")
    assert studies.status_code == 204, studies.text
    assert studies.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    one = http.options("/studies/1")
    assert set(one.headers["allow"].split(", ")) >= {"GET", "DELETE", "OPTIONS"}
    assert "POST" in http.options("/studies/1/cancel").headers["allow"]
    assert http.options("/no-such-thing").status_code == 404
    assert http.get("/no-such-thing").status_code == 404
    assert http.post("/no-such-thing").status_code == 404
    put = http.put("/studies", json={})
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, HEAD, OPTIONS, POST"


def test_submit_checks_warm_start_from_study_against_the_database(http: httpx.Client) -> None:
    earlier = http.post("/studies", json=BRANIN_SPEC).json()["id"]
    field = "strategy.warm_start.from_study"

    def submit(space: dict[str, object], study: int) -> httpx.Response:
        strategy = {"name": "bohb", "warm_start": {"from_study": study}}
        return http.post("/studies", json={**BRANIN_SPEC, "strategy": strategy, "space": space})

    missing = submit(BRANIN_SPEC["space"], 10**6)
    assert missing.status_code == 422
    assert missing.json()["detail"] == [{"field": field, "message": "no study with id 1000000"}]
    narrower = {"x1": BRANIN_SPEC["space"]["x1"]}
    refused = submit(narrower, earlier)
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {"field": field, "message": f"study {earlier} searches 'x2', which this space lacks"}
    ]
    accepted = submit(BRANIN_SPEC["space"], earlier)
    assert accepted.status_code == 201, accepted.text
    warm = accepted.json()["spec"]["strategy"]["warm_start"]
    assert warm == {"from_study": earlier, "points": []}
