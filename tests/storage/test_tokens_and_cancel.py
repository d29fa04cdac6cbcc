"""Repository contract for API tokens and study cancellation, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hpo.storage.errors import NotFoundError
from hpo.storage.repository import Repository
from tests.storage.test_repository import make_study, make_trial


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    with Repository(db_url) as repository:
        yield repository


def test_tokens_are_found_by_hash_and_names_are_unique(repo: Repository) -> None:
    assert repo.count_tokens() == 0
    repo.create_token("alice", "a" * 64, False)
    repo.create_token("root", "b" * 64, True)
    assert repo.count_tokens() == 2
    assert repo.user_for_token_hash("a" * 64) == ("alice", False)
    assert repo.user_for_token_hash("b" * 64) == ("root", True)
    assert repo.user_for_token_hash("c" * 64) is None
    with pytest.raises(ValueError, match="alice"):
        repo.create_token("alice", "d" * 64, True)
    assert repo.count_tokens() == 2


def test_a_queued_study_cancels_at_once(repo: Repository) -> None:
    study = make_study(repo)
    assert not study.cancel_requested and not repo.cancel_requested(study.id)
    assert repo.cancel_queued(study.id)
    cancelled = repo.get_study(study.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert repo.cancel_requested(study.id)
    # Finished: neither cancels again, and a runner never claims it.
    assert not repo.cancel_queued(study.id)
    assert not repo.request_cancel(study.id)
    assert repo.claim_next_queued("w", 60) is None


def test_a_running_study_is_flagged_for_its_driver(repo: Repository) -> None:
    study = make_study(repo)
    assert repo.claim_next_queued("w", 60) is not None
    assert not repo.cancel_queued(study.id)
    assert repo.request_cancel(study.id)
    flagged = repo.get_study(study.id)
    assert flagged.status == "running" and flagged.cancel_requested
    assert repo.cancel_requested(study.id)
    assert not repo.cancel_requested(study.id + 100)


def test_a_running_study_is_not_deleted(repo: Repository) -> None:
    running = make_study(repo, name="running")
    done = make_study(repo, name="done", status="completed")
    make_trial(repo, done.id)
    assert repo.claim_study(running.id, "w", 60)
    assert not repo.delete_study_unless_running(running.id)
    assert repo.get_study(running.id).status == "running"
    assert repo.delete_study_unless_running(done.id)
    with pytest.raises(NotFoundError):
        repo.get_study(done.id)
    with pytest.raises(NotFoundError):
        repo.delete_study_unless_running(done.id)


def test_events_filter_by_kind(repo: Repository) -> None:
    study = make_study(repo)
    for kind in ("started", "trial_started", "resumed", "trial_started"):
        repo.add_event(study.id, kind, kind)
    assert [e.kind for e in repo.list_events(study.id, kind="trial_started")] == [
        "trial_started",
        "trial_started",
    ]
    assert len(repo.list_events(study.id, kind="started", limit=1)) == 1
    assert repo.list_events(study.id, kind="cancelled") == []
