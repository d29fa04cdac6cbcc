"""Per-user limits (issue 12, item 3): one user cannot queue every runner's work. Past
their queued+running studies or concurrent trials a submit is a 429 with Retry-After;
other users are not affected; a finished or cancelled study frees its place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from hpo import service
from hpo.config import Settings
from hpo.storage.repository import Repository
from tests.api.support import BRANIN_SPEC, live_server

SETTINGS = Settings(
    allowed_modules=("hpo.examples",),
    max_active_studies_per_user=3,
    max_concurrent_trials_per_user=5,
    retry_after_s=17,
)


@pytest.fixture(scope="module")
def tokens(backend_url: str) -> dict[str, str]:
    with Repository(backend_url) as repo:
        return {name: service.create_token(repo, name, admin=False) for name in ("ann", "ben")}


@pytest.fixture(scope="module")
def base_url(backend_url: str, tokens: dict[str, str]) -> Iterator[str]:
    with live_server(create_app(backend_url, settings=SETTINGS)) as url:
        yield url + "/api/v1"


def _client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})


def _spec(concurrency: int = 1) -> dict[str, Any]:
    return {**BRANIN_SPEC, "budget": {"trials": 3, "max_epochs": 3, "concurrency": concurrency}}


def _too_many(answer: httpx.Response) -> str:
    assert answer.status_code == 429, answer.text
    assert answer.headers["retry-after"] == "17"
    return str(answer.json()["detail"][0]["message"])


def test_queued_and_running_studies_per_user(
    base_url: str, tokens: dict[str, str], backend_url: str
) -> None:
    with _client(base_url, tokens["ann"]) as ann, _client(base_url, tokens["ben"]) as ben:
        ids = [ann.post("/studies", json=_spec()).json()["id"] for _ in range(3)]
        assert "at most 3" in _too_many(ann.post("/studies", json=_spec()))
        # A running study counts too; another user is not affected.
        with Repository(backend_url) as repo:
            repo.set_study_status(ids[0], "running")
        assert ann.post("/studies", json=_spec()).status_code == 429
        assert ben.post("/studies", json=_spec()).status_code == 201
        # A cancelled and a finished study free their places.
        assert ann.post(f"/studies/{ids[1]}/cancel").json()["status"] == "cancelled"
        assert ann.post("/studies", json=_spec()).status_code == 201
        with Repository(backend_url) as repo:
            repo.set_study_status(ids[0], "completed")
        assert ann.post("/studies", json=_spec()).status_code == 201
        assert ann.post("/studies", json=_spec()).status_code == 429
        for study in ann.get("/studies").json()["data"]:
            if study["status"] == "queued":
                ann.post(f"/studies/{study['id']}/cancel")


def test_concurrent_trials_per_user(base_url: str, tokens: dict[str, str]) -> None:
    with _client(base_url, tokens["ben"]) as ben:
        for study in ben.get("/studies").json()["data"]:
            if study["status"] == "queued":
                ben.post(f"/studies/{study['id']}/cancel")
        alone = ben.post("/studies", json=_spec(concurrency=6))
        assert alone.status_code == 422
        assert alone.json()["detail"][0]["field"] == "budget.concurrency"
        first = ben.post("/studies", json=_spec(concurrency=3))
        assert first.status_code == 201, first.text
        assert "limit of 5" in _too_many(ben.post("/studies", json=_spec(concurrency=3)))
        assert ben.post("/studies", json=_spec(concurrency=2)).status_code == 201
        ben.post(f"/studies/{first.json()['id']}/cancel")
        assert ben.post("/studies", json=_spec(concurrency=3)).status_code == 201
