"""A fresh database for one benchmark arm: a SQLite file, or a database of its own on a
PostgreSQL server, created for the arm and dropped after it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator


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
