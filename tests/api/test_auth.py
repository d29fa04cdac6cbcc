"""With auth enabled (a token exists) every endpoint but /healthz needs a bearer token;
a user sees and cancels only their own studies (others' are 404: no leak), an admin all."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from hpo import service
from hpo.config import Settings, get_settings
from hpo.storage.repository import Repository
from tests.api.support import BRANIN_SPEC, live_server, seed_study

SETTINGS = Settings(allowed_modules=("hpo.examples",))


@pytest.fixture(scope="module")
def tokens(backend_url: str) -> dict[str, str]:
    with Repository(backend_url) as repo:
        return {
            "alice": service.create_token(repo, "alice", admin=False),
            "bob": service.create_token(repo, "bob", admin=False),
            "root": service.create_token(repo, "root", admin=True),
        }


@pytest.fixture(scope="module")
def base_url(backend_url: str, tokens: dict[str, str]) -> Iterator[str]:
    app = create_app(backend_url, settings=SETTINGS)
    with live_server(app) as url:
        yield url + "/api/v1"


def _identity(token: str) -> str:
    return f"token:{hashlib.sha256(token.encode()).hexdigest()[:32]}"


def _as(base_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=10)


def test_missing_or_wrong_token_is_401(base_url: str, backend_url: str) -> None:
    with Repository(backend_url) as repo:
        study = seed_study(repo, owner="alice")
    paths = [
        "/studies",
        f"/studies/{study.id}",
        f"/studies/{study.id}/trials",
        f"/studies/{study.id}/events",
        f"/studies/{study.id}/best",
    ]
    for token in (None, "wrong-token"):
        with _as(base_url, token) as http:
            for path in paths:
                response = http.get(path)
                assert response.status_code == 401, (token, path)
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["detail"][0]["field"] == "header.Authorization"
            assert http.post("/studies", json=BRANIN_SPEC).status_code == 401
    with httpx.Client(timeout=10) as http:
        basic = http.get(base_url + "/studies", headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401


def test_the_api_document_needs_a_token_and_no_page_loads_a_cdn(
    base_url: str, tokens: dict[str, str]
) -> None:
    root = base_url.removesuffix("/api/v1")
    with _as(base_url, None) as anonymous, _as(base_url, tokens["alice"]) as alice:
        assert anonymous.get("/openapi.json").status_code == 401
        document = alice.get("/openapi.json")
        assert document.status_code == 200 and document.json()["openapi"].startswith("3.")
        for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            for client in (anonymous, alice):
                answer = client.get(root + page)
                assert answer.status_code in (401, 404), (page, answer.status_code)
                assert "cdn" not in answer.text.lower()


def test_healthz_is_open(base_url: str) -> None:
    assert httpx.get(base_url + "/healthz").status_code == 200
    assert httpx.get(base_url.removesuffix("/api/v1") + "/healthz").status_code == 200


def test_owners_see_only_their_own(base_url: str, tokens: dict[str, str]) -> None:
    with _as(base_url, tokens["alice"]) as alice, _as(base_url, tokens["bob"]) as bob:
        mine = alice.post("/studies", json=BRANIN_SPEC).json()
        assert mine["owner"] == _identity(tokens["alice"])
        theirs = bob.post("/studies", json=BRANIN_SPEC).json()
        assert theirs["owner"] == _identity(tokens["bob"])
        for path in (
            f"/studies/{theirs['id']}",
            f"/studies/{theirs['id']}/trials",
            f"/studies/{theirs['id']}/best",
            f"/studies/{theirs['id']}/events",
        ):
            hidden = alice.get(path)
            assert hidden.status_code == 404, path
        unknown = alice.get("/studies/999999").json()
        assert alice.get(f"/studies/{theirs['id']}").json().keys() == unknown.keys()
        assert alice.post(f"/studies/{theirs['id']}/cancel").status_code == 404
        assert alice.delete(f"/studies/{theirs['id']}").status_code == 404
        listed = alice.get("/studies").json()
        assert {s["owner"] for s in listed["data"]} == {_identity(tokens["alice"])}
        for owner in ("bob", _identity(tokens["bob"])):
            assert alice.get("/studies", params={"owner": owner}).json() == {
                "data": [],
                "count": 0,
            }
        assert alice.post(f"/studies/{mine['id']}/cancel").json()["status"] == "cancelled"
        assert bob.get(f"/studies/{theirs['id']}").json()["status"] == "queued"


def test_admin_sees_all(base_url: str, tokens: dict[str, str]) -> None:
    with _as(base_url, tokens["bob"]) as bob, _as(base_url, tokens["root"]) as root:
        theirs = bob.post("/studies", json=BRANIN_SPEC).json()
        owners = {s["owner"] for s in root.get("/studies", params={"limit": 500}).json()["data"]}
        assert {_identity(tokens["alice"]), _identity(tokens["bob"])} <= owners
        assert root.get(f"/studies/{theirs['id']}").status_code == 200
        assert root.post(f"/studies/{theirs['id']}/cancel").json()["status"] == "cancelled"


def test_a_token_named_admin_is_not_the_environment_admin(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12, item 6: owners are identities. A user token *named* ``admin`` (not an
    admin) must not reach a study submitted with HPO_API_TOKEN (whose user is called
    ``admin`` too), nor the other way round look like its owner."""
    monkeypatch.setenv("HPO_API_TOKEN", "the-environment-admin-token")
    get_settings.cache_clear()
    try:
        with Repository(db_url) as repo:
            impostor = service.create_token(repo, "admin", admin=False)
            legacy = seed_study(repo, owner="admin")  # recorded by name, before identities
        with (
            live_server(create_app(db_url, settings=SETTINGS)) as url,
            _as(url + "/api/v1", "the-environment-admin-token") as env_admin,
            _as(url + "/api/v1", impostor) as named_admin,
        ):
            study = env_admin.post("/studies", json=BRANIN_SPEC)
            assert study.status_code == 201, study.text
            study_id = study.json()["id"]
            assert study.json()["owner"] == "env:HPO_API_TOKEN"
            for path in (f"/studies/{study_id}", f"/studies/{legacy.id}"):
                assert named_admin.get(path).status_code == 404, path
                assert named_admin.post(path + "/cancel").status_code == 404, path
                assert named_admin.delete(path).status_code == 404, path
            assert named_admin.get("/studies").json() == {"data": [], "count": 0}
            for owner in ("admin", "env:HPO_API_TOKEN"):
                listed = named_admin.get("/studies", params={"owner": owner}).json()
                assert listed == {"data": [], "count": 0}
            # The impostor's own study is theirs, and the real admin sees everything.
            own = named_admin.post("/studies", json=BRANIN_SPEC).json()
            assert own["owner"] == _identity(impostor)
            assert named_admin.get(f"/studies/{own['id']}").status_code == 200
            seen = {s["id"] for s in env_admin.get("/studies").json()["data"]}
            assert {study_id, legacy.id, own["id"]} <= seen
            assert env_admin.get(f"/studies/{study_id}").json()["status"] == "queued"
    finally:
        get_settings.cache_clear()


DIGITS_SPEC: dict[str, Any] = {
    "name": "finetune-api",
    "objective": {"metric": "val_loss", "mode": "min"},
    "trainable": {"dataset": "digits", "model": "mlp"},
    "budget": {"trials": 1, "max_epochs": 1},
    "strategy": {"name": "random", "seed": 0},
    "space": {"lr": {"loguniform": [0.001, 0.01]}},
}


def test_init_from_over_rest_names_a_visible_trial_never_a_server_file(
    base_url: str, tokens: dict[str, str], tmp_path: Path
) -> None:
    existing = tmp_path / "weights.pt"
    existing.write_bytes(b"not weights")
    with _as(base_url, tokens["alice"]) as alice, _as(base_url, tokens["bob"]) as bob:
        theirs = bob.post("/studies", json=BRANIN_SPEC).json()
        mine = alice.post("/studies", json=BRANIN_SPEC).json()
        # A path that exists and one that does not are refused in the same words: the
        # answer tells nothing about the server's disk.
        answers = [
            alice.post("/studies", json={**DIGITS_SPEC, "fixed": {"init_from": str(path)}})
            for path in (existing, tmp_path / "absent.pt")
        ]
        for answer in answers:
            assert answer.status_code == 422, answer.text
        assert answers[0].json() == answers[1].json()
        (problem,) = answers[0].json()["detail"]
        assert problem["field"] == "fixed.init_from"
        assert "STUDY/NUMBER" in problem["message"]
        in_space = {**DIGITS_SPEC, "space": {"init_from": {"choice": [f"{mine['id']}/1", "x.pt"]}}}
        (problem,) = alice.post("/studies", json=in_space).json()["detail"]
        assert problem["field"] == "space.init_from.choice[1]"
        # Another user's study reads as a missing one.
        hidden = alice.post(
            "/studies", json={**DIGITS_SPEC, "fixed": {"init_from": f"{theirs['id']}/1"}}
        )
        missing = alice.post("/studies", json={**DIGITS_SPEC, "fixed": {"init_from": "999999/1"}})
        assert hidden.status_code == missing.status_code == 422
        assert hidden.json()["detail"][0]["message"] == f"no study with id {theirs['id']}"
        assert missing.json()["detail"][0]["message"] == "no study with id 999999"
        accepted = alice.post(
            "/studies", json={**DIGITS_SPEC, "fixed": {"init_from": f"{mine['id']}/1"}}
        )
        assert accepted.status_code == 201, accepted.text
