"""A server without tokens (no authentication) stays local: only loopback `Host` names,
and no write a web page elsewhere could make — a foreign `Origin`, or a body that is not
JSON or YAML (issue 12, item 5). Real HTTP against a live server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from hpo import service
from hpo.config import Settings
from hpo.storage.repository import Repository
from tests.api.support import BRANIN_SPEC, BRANIN_YAML, live_server, seed_study

SETTINGS = Settings(allowed_modules=("hpo.examples",))


@pytest.fixture(scope="module")
def base_url(backend_url: str) -> Iterator[str]:
    with live_server(create_app(backend_url, settings=SETTINGS)) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def _running(backend_url: str) -> int:
    with Repository(backend_url) as repo:
        return seed_study(repo, finish=False).id


def _status(backend_url: str, study_id: int) -> tuple[str, bool]:
    with Repository(backend_url) as repo:
        study = repo.get_study(study_id)
        return study.status, study.cancel_requested


def _refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert detail[0]["field"] == field
    return str(detail[0]["message"])


@pytest.mark.parametrize("host", ["rebind.attacker.example", "10.0.0.1", "localhost.evil.example"])
def test_foreign_host_is_refused_on_reads_writes_and_pages(
    http: httpx.Client, base_url: str, host: str
) -> None:
    port = base_url.rpartition(":")[2]
    for value in (host, f"{host}:{port}"):
        headers = {"Host": value}
        message = _refused(http.get("/api/v1/studies", headers=headers), "header.Host")
        assert "loopback" in message and "token" in message
        _refused(http.get("/", headers=headers), "header.Host")
        _refused(http.post("/api/v1/studies", json=BRANIN_SPEC, headers=headers), "header.Host")


def test_loopback_hosts_are_served(http: httpx.Client, base_url: str) -> None:
    port = base_url.rpartition(":")[2]
    for host in ("127.0.0.1", "localhost", "[::1]", "127.0.0.2", "LOCALHOST"):
        for value in (host, f"{host}:{port}"):
            assert http.get("/api/v1/studies", headers={"Host": value}).status_code == 200


def test_cross_site_form_post_cannot_cancel(http: httpx.Client, backend_url: str) -> None:
    """The attack as reported: a form on another site posting to the cancel endpoint."""
    study_id = _running(backend_url)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = http.post(
        f"/api/v1/studies/{study_id}/cancel",
        content=b"x=1",
        headers={**form, "Origin": "http://evil.example"},
    )
    assert "evil.example" in _refused(answer, "header.Origin")
    # A form without an Origin (old browsers, some redirects) is refused by its type.
    answer = http.post(f"/api/v1/studies/{study_id}/cancel", content=b"x=1", headers=form)
    assert "JSON or YAML" in _refused(answer, "header.Content-Type")
    for content_type in ("multipart/form-data; boundary=x", "text/plain"):
        answer = http.delete(f"/api/v1/studies/{study_id}", headers={"Content-Type": content_type})
        _refused(answer, "header.Content-Type")
    assert _status(backend_url, study_id) == ("running", False)


def test_foreign_origins_are_refused_on_every_write(
    http: httpx.Client, base_url: str, backend_url: str
) -> None:
    study_id = _running(backend_url)
    for origin in ("http://evil.example", "null", base_url.replace("127.0.0.1", "localhost")):
        headers = {"Origin": origin}
        _refused(http.post("/api/v1/studies", json=BRANIN_SPEC, headers=headers), "header.Origin")
        _refused(http.post(f"/api/v1/studies/{study_id}/cancel", headers=headers), "header.Origin")
        _refused(http.delete(f"/api/v1/studies/{study_id}", headers=headers), "header.Origin")
    cross = {"Sec-Fetch-Site": "cross-site"}
    _refused(http.post("/api/v1/studies", json=BRANIN_SPEC, headers=cross), "header.Sec-Fetch-Site")
    assert _status(backend_url, study_id) == ("running", False)


def test_own_pages_and_local_clients_still_write(
    http: httpx.Client, base_url: str, backend_url: str
) -> None:
    same_origin = http.post("/api/v1/studies", json=BRANIN_SPEC, headers={"Origin": base_url})
    assert same_origin.status_code == 201, same_origin.text
    yaml_body = http.post(
        "/api/v1/studies",
        content=BRANIN_YAML,
        headers={"Content-Type": "application/yaml; charset=utf-8"},
    )
    assert yaml_body.status_code == 201, yaml_body.text
    # The CLI's cancel: no body, no Content-Type, no Origin.
    cancelled = http.post(f"/api/v1/studies/{same_origin.json()['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


def test_with_a_token_the_guard_steps_aside(db_url: str) -> None:
    """Once a token exists every request authenticates; names and origins no longer
    decide (a reverse proxy may serve any name)."""
    with Repository(db_url) as repo:
        token = service.create_token(repo, "alice", admin=False)
    with live_server(create_app(db_url, settings=SETTINGS)) as url:
        auth = {"Authorization": f"Bearer {token}", "Host": "hpo.example.org"}
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/api/v1/studies", headers=auth).status_code == 200
            plain = http.post(
                "/api/v1/studies",
                content=b"name: x",
                headers={**auth, "Content-Type": "text/plain", "Origin": "http://evil.example"},
            )
            assert plain.status_code == 415, plain.text
            assert (
                http.get("/api/v1/studies", headers={"Host": "hpo.example.org"}).status_code == 401
            )
