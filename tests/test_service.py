"""The service rules the REST API enforces: ownership, tokens, cancel and delete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from hpo import service
from hpo.config import get_settings
from hpo.service import Conflict, User
from hpo.spec import load_spec
from hpo.storage.errors import NotFoundError
from hpo.storage.repository import Repository, StudyRecord
from tests.execution.conftest import branin_spec

ALICE = User("alice", admin=False)
BOB = User("bob", admin=False)
ROOT = User("root", admin=True)


@pytest.fixture
def repo(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repository]:
    monkeypatch.delenv("HPO_API_TOKEN", raising=False)
    get_settings.cache_clear()
    with Repository(db_url) as repository:
        yield repository
    get_settings.cache_clear()


def _identity(token: str) -> str:
    # Computed here, not with the service's helper: the first 128 bits of the SHA-256.
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def submit(repo: Repository, owner: str | None) -> StudyRecord:
    return service.submit_study(repo, load_spec(branin_spec(name=f"of-{owner}")), owner=owner)


def test_a_user_sees_and_cancels_only_their_own_studies(repo: Repository) -> None:
    mine, theirs = submit(repo, "alice"), submit(repo, "bob")
    assert mine.status == "queued" and mine.owner == "alice"
    assert service.get_visible_study(repo, mine.id, ALICE) == mine
    # Another user's study is reported exactly as a missing one.
    for study_id in (theirs.id, theirs.id + 100):
        with pytest.raises(NotFoundError, match=f"no study with id {study_id}"):
            service.get_visible_study(repo, study_id, ALICE)
    with pytest.raises(NotFoundError):
        service.cancel_study(repo, theirs.id, user=ALICE)
    with pytest.raises(NotFoundError):
        service.delete_study(repo, theirs.id, user=ALICE)
    assert repo.get_study(theirs.id).status == "queued"
    # An admin, and anyone while auth is off, sees and acts on every study.
    for user in (ROOT, None):
        assert service.can_see(theirs, user)
        assert service.get_visible_study(repo, theirs.id, user).id == theirs.id
    assert service.cancel_study(repo, theirs.id, user=ROOT).status == "cancelled"
    service.delete_study(repo, theirs.id, user=ROOT)
    with pytest.raises(NotFoundError):
        repo.get_study(theirs.id)


def test_cancel_queued_is_immediate_and_cancel_running_is_a_request(repo: Repository) -> None:
    queued, running = submit(repo, "alice"), submit(repo, "alice")
    cancelled = service.cancel_study(repo, queued.id, user=ALICE)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert "cancelled" in [e.kind for e in repo.list_events(queued.id)]
    with pytest.raises(Conflict, match="cancelled"):
        service.cancel_study(repo, queued.id, user=ALICE)

    assert repo.claim_study(running.id, "runner-1", 60)
    flagged = service.cancel_study(repo, running.id, user=ALICE)
    # The driver ends it; until then it runs, flagged.
    assert flagged.status == "running" and flagged.cancel_requested
    assert repo.cancel_requested(running.id)
    # Asking twice is harmless and logs the request once.
    service.cancel_study(repo, running.id, user=ALICE)
    kinds = [e.kind for e in repo.list_events(running.id)]
    assert kinds.count("cancel_requested") == 1


def test_delete_refuses_a_running_study(repo: Repository) -> None:
    study = submit(repo, None)
    assert repo.claim_study(study.id, "runner-1", 60)
    with pytest.raises(Conflict, match="running"):
        service.delete_study(repo, study.id, user=None)
    assert repo.get_study(study.id).status == "running"
    repo.set_study_status(study.id, "completed")
    service.delete_study(repo, study.id, user=None)
    with pytest.raises(NotFoundError):
        repo.get_study(study.id)


def test_tokens_are_stored_hashed_and_authenticate(repo: Repository) -> None:
    assert not service.auth_enabled(repo)
    alice = service.create_token(repo, "alice", admin=False)
    root = service.create_token(repo, "root", admin=True)
    assert len(alice) >= 40 and alice != root
    assert service.auth_enabled(repo)
    assert service.authenticate(repo, alice) == User("alice", False, id=_identity(alice))
    assert service.authenticate(repo, root) == User("root", True, id=_identity(root))
    for bad in (None, "", alice[:-1], alice + "x", "Bearer " + alice):
        assert service.authenticate(repo, bad) is None
    with pytest.raises(ValueError, match="already has a token"):
        service.create_token(repo, "alice", admin=True)
    # The plaintext is nowhere in the database, only its hash.
    with repo.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM tokens"))]
    dump = repr(rows)
    assert alice not in dump and root not in dump
    assert service.hash_token(alice) in dump


def test_hpo_api_token_authenticates_as_admin(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_API_TOKEN", "s3cret-from-the-environment")
    get_settings.cache_clear()
    assert service.auth_enabled(repo)  # no token in the database
    assert service.authenticate(repo, "s3cret-from-the-environment") == User(
        "admin", True, id="env:HPO_API_TOKEN"
    )
    assert service.authenticate(repo, "s3cret") is None
    assert service.authenticate(repo, None) is None


def test_hpo_token_create_prints_a_working_token_once(repo: Repository, db_url: str) -> None:
    from typer.testing import CliRunner

    from hpo.cli import app

    cli = CliRunner()
    made = cli.invoke(app, ["token", "create", "carol", "--admin", "--db", db_url])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert service.authenticate(repo, token) == User("carol", admin=True, id=_identity(token))
    again = cli.invoke(app, ["token", "create", "carol", "--db", db_url])
    assert again.exit_code == 2 and "already has a token" in again.stderr


def test_owners_are_identities_never_names(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token named like the environment's admin is another identity; studies recorded
    by name (before identities) are visible to admins only."""
    monkeypatch.setenv("HPO_API_TOKEN", "env-admin-secret")
    get_settings.cache_clear()
    named_admin = service.authenticate(repo, service.create_token(repo, "admin", admin=False))
    env_admin = service.authenticate(repo, "env-admin-secret")
    assert named_admin is not None and env_admin is not None
    assert named_admin.name == env_admin.name == "admin"
    assert named_admin.identity != env_admin.identity
    by_env = submit(repo, env_admin.identity)
    by_name = submit(repo, "admin")
    for study in (by_env, by_name):
        assert not service.can_see(study, named_admin)
        with pytest.raises(NotFoundError):
            service.cancel_study(repo, study.id, user=named_admin)
        assert service.can_see(study, env_admin)
    assert service.can_see(submit(repo, named_admin.identity), named_admin)
