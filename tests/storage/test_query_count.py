"""Reading a big study stays a constant number of SQL statements (no N+1 queries)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from hpo.storage.models import Study, Trial
from hpo.storage.repository import Repository, ResultRow

N_TRIALS = 2000
N_EPOCHS = 5


@contextmanager
def count_statements(repo: Repository) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(repo.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(repo.engine, "before_cursor_execute", record)


@pytest.fixture
def big_study(db_url: str) -> Iterator[tuple[Repository, int]]:
    """A study of 2,000 trials × 5 epochs, 100 of them finished.

    The trial rows are inserted in one statement: 2,000 `create_trial` transactions would
    dominate the test's run time, and numbering is tested elsewhere. Results go through
    `record_results` and `finish_trial`, as the driver writes them.
    """
    with Repository(db_url) as repo:
        study = repo.create_study(
            "big", {}, objective_metric="loss", objective_mode="min", n_trials_target=N_TRIALS
        )
        now = datetime.now(UTC)
        with repo.engine.begin() as conn:
            conn.execute(
                sa.insert(Trial),
                [
                    {
                        "study_id": study.id,
                        "number": n,
                        "status": "running",
                        "config": {"i": n},
                        "started_at": now,
                        "epochs_run": 0,
                        "final_metrics": {},
                        "provenance": {},
                    }
                    for n in range(1, N_TRIALS + 1)
                ],
            )
            conn.execute(
                sa.update(Study).where(Study.id == study.id).values(last_trial_number=N_TRIALS)
            )
        trials = list(repo.iter_trials(study.id))
        for start in range(0, N_TRIALS, 500):
            repo.record_results(
                [
                    ResultRow(t.id, step, {"loss": loss, "acc": 1 - loss}, loss)
                    for t in trials[start : start + 500]
                    for step in range(1, N_EPOCHS + 1)
                    for loss in [((t.id * 7919) % 1000) / 1000 + 1 / step]
                ]
            )
        for t in trials[::20]:
            repo.finish_trial(t.id, "completed")
        yield repo, study.id


def test_reading_a_big_study_takes_at_most_two_statements(
    big_study: tuple[Repository, int],
) -> None:
    repo, study_id = big_study
    for sort in ("number", "best_value", "acc", "loss"):
        with count_statements(repo) as statements:
            page = repo.list_trials(study_id, sort=sort, limit=100, offset=100)
        assert len(page) == 100
        assert len(statements) <= 2, statements

    with count_statements(repo) as statements:
        best = repo.best_trial(study_id)
    assert len(statements) <= 2, statements
    assert best is not None and best.status == "completed"
    assert best.best_value == min(
        t.best_value or math.inf for t in repo.iter_trials(study_id) if t.status == "completed"
    )

    with count_statements(repo) as statements:
        repo.record_results([ResultRow(best.id, N_EPOCHS + 1, {"loss": 0.0, "acc": 1.0}, 0.0)])
    assert len(statements) == 3, statements
