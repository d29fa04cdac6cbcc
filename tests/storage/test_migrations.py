"""Schema lifecycle: creation at head, refusal of old or unknown schemas, upgrade, drift."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hpo.storage.database import create_engine, current_revision, downgrade, head_revision, upgrade
from hpo.storage.errors import SchemaOutdatedError, StorageError
from hpo.storage.models import Base
from hpo.storage.repository import Repository


def test_head_is_the_sixth_release() -> None:
    assert head_revision() == "0006"


def test_a_fresh_database_is_created_at_head(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    with Repository(empty_db_url) as repo:
        assert repo.list_studies() == []
    assert current_revision(empty_db_url) == head_revision()


def test_create_false_refuses_an_empty_database(empty_db_url: str) -> None:
    with pytest.raises(SchemaOutdatedError, match="hpo db upgrade --db"):
        Repository(empty_db_url, create=False)


def test_an_older_schema_is_refused_until_upgraded(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    # Down to base keeps an empty alembic_version table: an hpo database older than head.
    downgrade(empty_db_url, "base")
    with pytest.raises(SchemaOutdatedError) as info:
        Repository(empty_db_url)
    assert f"hpo db upgrade --db {empty_db_url}" in str(info.value)

    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    with Repository(empty_db_url) as repo:
        assert repo.create_study(
            "s", {}, objective_metric="loss", objective_mode="min", n_trials_target=1
        ).id


def test_a_0001_database_upgrades_to_head_keeping_its_rows(empty_db_url: str) -> None:
    # A database as release 0001 left it: schema at 0001, with a study, a trial and metrics.
    upgrade(empty_db_url, "0001")
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO studies (id, name, owner, spec, status, objective_metric, "
                    "objective_mode, n_trials_target, last_trial_number, created_at) VALUES "
                    "(1, 'old', 'alice', '{}', 'running', 'loss', 'min', 5, 1, :now)"
                ),
                {"now": datetime.now(UTC)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO trials (id, study_id, number, status, config, started_at, "
                    "epochs_run, last_value, best_value, final_metrics, provenance) VALUES "
                    "(1, 1, 1, 'completed', '{\"lr\": 0.1}', :now, 2, 0.25, 0.25, '{}', '{}')"
                ),
                {"now": datetime.now(UTC)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO metrics (trial_id, step, name, value) VALUES "
                    "(1, 1, 'loss', 0.5), (1, 2, 'loss', 0.25)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO events (study_id, trial_id, kind, message, created_at) VALUES "
                    "(1, NULL, 'started', 'study started', :now), "
                    "(1, 1, 'trial_completed', 'trial 1 completed', :now)"
                ),
                {"now": datetime.now(UTC)},
            )
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutdatedError, match="hpo db upgrade"):
        Repository(empty_db_url)

    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision() == "0006"
    with Repository(empty_db_url) as repo:
        study = repo.get_study(1)
        assert (study.name, study.owner, study.status) == ("old", "alice", "running")
        assert study.cancel_requested is False
        (trial,) = repo.list_trials(1)
        assert trial.config == {"lr": 0.1} and trial.status == "completed"
        assert [m.value for m in repo.trial_metrics(trial.id)] == [0.5, 0.25]
        assert repo.count_tokens() == 0
        assert repo.request_cancel(1) and repo.cancel_requested(1)
        # 0003's index serves one trial's events.
        assert [e.kind for e in repo.trial_events(1, trial.id)] == ["trial_completed"]
        # 0004: the old rows are attempt 1, the trial's one value its last value, the
        # study's lease token 0 (the next claim makes it 1).
        assert [m.attempt for m in repo.trial_metrics(trial.id, all_attempts=True)] == [1, 1]
        assert (trial.attempt, trial.objective_value) == (1, 0.25)
        assert study.lease_token == 0
        # 0006: a trial's values of its objectives; the old study had one.
        assert trial.objective_values == [0.25]


def test_an_unknown_revision_is_a_storage_error(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(StorageError) as info:
        Repository(empty_db_url)
    assert not isinstance(info.value, SchemaOutdatedError)
    assert "9999" in str(info.value)


def test_migrations_match_the_models(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_concurrent_first_opens_create_the_schema_once(empty_db_url: str) -> None:
    barrier = threading.Barrier(4)

    def open_and_write(i: int) -> int:
        barrier.wait()
        with Repository(empty_db_url) as repo:
            return repo.create_study(
                f"s{i}", {}, objective_metric="loss", objective_mode="min", n_trials_target=1
            ).id

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(open_and_write, range(4))) == [1, 2, 3, 4]
    assert current_revision(empty_db_url) == head_revision()
