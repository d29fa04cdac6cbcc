"""What the hpo arms of the overhead benchmarks stand on: a fresh database (a SQLite
file, or a database of its own on a PostgreSQL server, created for the arm and dropped
after it) and a study of trivial trials in it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def fresh_database(folder: str, pg: str | None, prefix: str) -> Iterator[str]:
    """A SQLAlchemy URL: ``<folder>/<prefix>.db``, or a new database named
    ``<prefix>_<random>`` on the PostgreSQL server `pg` (dropped at the end)."""
    if pg is None:
        yield f"sqlite:///{folder}/{prefix}.db"
        return
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server = pg.rstrip("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{server.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_constant_study(
    repo: Any, name: str, *, trials: int, reports: int, concurrency: int
) -> int:
    """A study in `repo` (a `Repository`) of `trials` trials of the cheapest function,
    `hpo.examples.functions:constant`, each reporting `value` `reports` times: random
    sampler, fifo, `concurrency` at once. Returns its id."""
    from hpo.spec import load_spec

    spec = load_spec(
        {
            "name": name,
            "objective": {"metric": "value", "mode": "min"},
            "trainable": {"function": "hpo.examples.functions:constant"},
            "budget": {"trials": trials, "max_epochs": reports, "concurrency": concurrency},
            "strategy": {"sampler": "random", "scheduler": "fifo", "seed": 0},
            "space": {"x": {"uniform": [0, 1]}},
            "fixed": {"epochs": reports},
        }
    )
    study = repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric="value",
        objective_mode="min",
        n_trials_target=trials,
    )
    return int(study.id)
