"""Fenced leases, numbered attempts and outages, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpo.storage.errors import (
    LeaseHeldError,
    LeaseLostError,
    StorageError,
    StorageUnavailableError,
)
from hpo.storage.repository import Repository, ResultRow, StudyRecord


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    with Repository(db_url) as repository:
        yield repository


def make_study(repo: Repository, **kw: object) -> StudyRecord:
    return repo.create_study(
        "s",
        {"objective": {"metric": "loss", "mode": "min"}},
        objective_metric="loss",
        objective_mode="min",
        n_trials_target=5,
        **kw,  # type: ignore[arg-type]
    )


def test_a_study_created_claimed_cannot_be_claimed_by_a_runner(repo: Repository) -> None:
    study = make_study(repo, lease_owner="cli:1", lease_s=30)
    assert (study.status, study.lease_owner, study.lease_token) == ("running", "cli:1", 1)
    assert repo.claim_next_queued("runner", 30) is None
    with pytest.raises(LeaseHeldError, match="cli:1") as info:
        repo.acquire_lease(study.id, "cli:2", 30)
    assert info.value.owner == "cli:1" and info.value.expires_at == study.lease_expires_at


def test_lease_times_come_from_the_database_clock(repo: Repository) -> None:
    study = make_study(repo, lease_owner="cli:1", lease_s=60)
    with repo.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            db_now = conn.execute(sa.text("SELECT now()")).scalar_one()
        else:
            from datetime import UTC, datetime

            text = conn.execute(sa.text("SELECT strftime('%Y-%m-%d %H:%M:%f','now')")).scalar_one()
            db_now = datetime.fromisoformat(text).replace(tzinfo=UTC)
    assert study.lease_expires_at is not None
    remaining = study.lease_expires_at - db_now
    assert timedelta(seconds=58) < remaining <= timedelta(seconds=60)


def test_an_expired_or_missing_lease_is_taken_over_with_a_new_token(repo: Repository) -> None:
    study = make_study(repo, lease_owner="dead-cli", lease_s=0.2)
    time.sleep(0.4)
    taken = repo.claim_next_queued("runner", 30)
    assert taken is not None and (taken.id, taken.lease_token) == (study.id, 2)
    # A study left running with no lease at all (an old `hpo run`) is claimable too.
    legacy = make_study(repo, status="running")
    assert legacy.lease_owner is None
    again = repo.claim_next_queued("runner", 30)
    assert again is not None and again.id == legacy.id


def test_a_stale_driver_writes_nothing_once_its_lease_is_taken(repo: Repository) -> None:
    study = make_study(repo, lease_owner="old", lease_s=0.2)
    old = study.lease_token
    trial = repo.create_trial(
        study.id, config={"lr": 1}, seed=0, ray_trial_id="k1", provenance={}, token=old
    )
    assert repo.record_results([ResultRow(trial.id, 1, {"loss": 1.0}, 1.0)], token=old) == 0
    time.sleep(0.4)
    new = repo.acquire_lease(study.id, "new", 30)
    assert new.lease_token == old + 1
    assert repo.renew_lease(study.id, "old", 30, token=old) is False
    for write in (
        lambda: repo.record_results([ResultRow(trial.id, 2, {"loss": 0.5}, 0.5)], token=old),
        lambda: repo.finish_trial(trial.id, "completed", token=old),
        lambda: repo.create_trial(
            study.id, config={"lr": 2}, seed=1, ray_trial_id="k2", provenance={}, token=old
        ),
        lambda: repo.add_event(study.id, "x", "y", token=old),
        lambda: repo.set_study_status(study.id, "completed", token=old),
        lambda: repo.close_running_trials(study.id, token=old),
    ):
        with pytest.raises(LeaseLostError):
            write()
    stored = repo.get_trial(study.id, 1)
    assert (stored.status, stored.epochs_run) == ("running", 1)
    assert [m.step for m in repo.trial_metrics(trial.id)] == [1]
    assert repo.get_study(study.id).last_trial_number == 1
    # The new driver may close the trial; a write for a trial not running under its own
    # token (this one was started under the old token) is refused.
    refused = repo.record_results(
        [ResultRow(trial.id, 2, {"loss": 0.5}, 0.5)], token=new.lease_token
    )
    assert refused == 1
    assert repo.close_running_trials(study.id, token=new.lease_token) == 1


def test_a_runner_child_adopts_its_runners_lease(repo: Repository) -> None:
    make_study(repo)
    claimed = repo.claim_next_queued("runner-1", 30)
    assert claimed is not None
    adopted = repo.acquire_lease(claimed.id, "runner-1", 30, token=claimed.lease_token)
    assert adopted.lease_token == claimed.lease_token
    with pytest.raises(LeaseLostError):
        repo.acquire_lease(claimed.id, "runner-1", 30, token=claimed.lease_token + 1)


def test_attempts_are_kept_apart(repo: Repository) -> None:
    study = make_study(repo, lease_owner="d", lease_s=30)
    token = study.lease_token
    trial = repo.create_trial(
        study.id, config={}, seed=0, ray_trial_id="k", provenance={}, token=token
    )
    history = [(1, 0.9), (2, 0.1), (3, 0.3), (4, 0.2)]
    first = [ResultRow(trial.id, s, {"loss": v}, v) for s, v in history]
    repo.record_results(first, token=token)
    assert repo.start_attempt(trial.id, error="RuntimeError: boom\n\ntrace", of=2, token=token) == 2
    second = [ResultRow(trial.id, s, {"loss": v}, v) for s, v in [(1, 0.8), (2, 0.7)]]
    repo.record_results(second, token=token)
    repo.finish_trial(trial.id, "completed", token=token)
    stored = repo.get_trial(study.id, 1)
    assert (stored.attempt, stored.epochs_run, stored.last_value, stored.best_value) == (
        2,
        2,
        0.7,
        0.7,
    )
    assert [(m.step, m.value) for m in repo.trial_metrics(trial.id)] == [(1, 0.8), (2, 0.7)]
    every = repo.trial_metrics(trial.id, all_attempts=True)
    assert [(m.attempt, m.step) for m in every] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2)]
    assert repo.metric_series([trial.id], "loss") == {trial.id: [(1, 0.8), (2, 0.7)]}
    events = repo.list_events(study.id, kind="trial_retried")
    assert [e.message for e in events] == ["attempt 2 of 2 after: RuntimeError: boom"]


def test_the_metrics_key_includes_the_attempt(repo: Repository) -> None:
    study = make_study(repo)
    trial = repo.create_trial(study.id, config={}, seed=0, ray_trial_id=None, provenance={})
    repo.record_results([ResultRow(trial.id, 1, {"loss": 1.0}, 1.0)])
    with repo.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            sa.text(
                "INSERT INTO metrics (trial_id, attempt, step, name, value) "
                "VALUES (:t, 1, 1, 'loss', 2.0)"
            ),
            {"t": trial.id},
        )


_LOCKER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    """
)


def _lock_sqlite(path: str, seconds: float) -> subprocess.Popen[str]:
    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    return locker


@pytest.mark.slow
def test_a_sqlite_lock_longer_than_the_busy_timeout_is_waited_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with Repository(url, retry_s=60) as repo:
        study = make_study(repo)
        trial = repo.create_trial(study.id, config={}, seed=0, ray_trial_id=None, provenance={})
        # 40 s: longer than SQLite's 30 s busy timeout, so the first try fails "locked".
        locker = _lock_sqlite(str(tmp_path / "db.sqlite"), 40)
        started = time.monotonic()
        repo.record_results([ResultRow(trial.id, s, {"loss": 1.0 / s}, 1.0 / s) for s in (1, 2)])
        waited = time.monotonic() - started
        assert locker.wait() == 0
        assert 35 < waited < 60
        assert [m.step for m in repo.trial_metrics(trial.id)] == [1, 2]


def test_past_the_window_the_error_is_a_storage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with Repository(url, retry_s=0.5) as repo:
        study = make_study(repo)
        # A 0.1 s busy timeout on every connection (set after hpo's own pragmas), so the
        # lock outlasts each try and the whole window.
        sa.event.listen(
            repo.engine, "connect", lambda conn, _: conn.execute("PRAGMA busy_timeout=100")
        )
        repo.engine.dispose()
        locker = _lock_sqlite(str(tmp_path / "db.sqlite"), 3)
        try:
            with pytest.raises(StorageUnavailableError) as info:
                repo.add_event(study.id, "x", "y")
            assert isinstance(info.value, StorageError)
        finally:
            locker.wait()


def test_a_writer_pass_is_one_transaction_stored_whole_or_not_at_all(repo: Repository) -> None:
    from hpo.storage.records import KeyedResult, NewTrial, Retry, TrialEnd

    study = make_study(repo, lease_owner="d", lease_s=30)
    token = study.lease_token
    items = [
        NewTrial("a", {"x": 1}, 1, {"hpo_version": "t"}),
        NewTrial("b", {"x": 2}, 2, {}),
        KeyedResult("a", 1, {"loss": 0.9}, 0.9, {"hostname": "h"}),
        KeyedResult("b", 1, {"loss": 0.8}, 0.8, {}),
        Retry("b", "OSError: gone", 2),
        KeyedResult("b", 1, {"loss": 0.7}, 0.7, {}),
        KeyedResult("a", 2, {"loss": 0.5}, 0.5, {}),
        TrialEnd("a", "completed", None, "trial a completed after 2 epochs"),
    ]
    commits: list[int] = []
    sa.event.listen(repo.engine, "commit", lambda conn: commits.append(1))
    created = repo.write_batch(study.id, items, {}, token=token)
    assert len(commits) == 1
    assert sorted(created) == ["a", "b"]
    a, b = repo.get_trial(study.id, 1), repo.get_trial(study.id, 2)
    assert (a.status, a.epochs_run, a.objective_value) == ("completed", 2, 0.5)
    assert a.provenance == {"hpo_version": "t", "hostname": "h"}
    assert (b.status, b.attempt, b.last_value) == ("running", 2, 0.7)
    assert [(m.attempt, m.value) for m in repo.trial_metrics(b.id, all_attempts=True)] == [
        (1, 0.8),
        (2, 0.7),
    ]
    assert repo.get_study(study.id).best_trial_id == a.id
    kinds = [e.kind for e in repo.list_events(study.id)]
    assert kinds == ["trial_started", "trial_started", "trial_retried", "trial_completed"]

    # Once the lease is someone else's, a whole pass is refused: nothing of it is stored.
    with repo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE studies SET lease_token = lease_token + 1"))
    with pytest.raises(LeaseLostError):
        repo.write_batch(
            study.id,
            [NewTrial("c", {}, 3, {}), KeyedResult("b", 2, {"loss": 0.1}, 0.1, {})],
            created,
            token=token,
        )
    assert repo.get_study(study.id).last_trial_number == 2
    assert repo.get_trial(study.id, 2).epochs_run == 1
