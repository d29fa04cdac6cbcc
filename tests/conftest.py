"""Shared fixtures: database URLs for every storage backend.

* ``db_url`` — parametrized over ``sqlite`` (a file in ``tmp_path``, created on first use)
  and ``postgresql`` (marked ``postgres``). Any test taking it runs on both backends. The
  PostgreSQL side is one database per test session, reset for each test to the current
  schema with no rows (TRUNCATE), so ``Repository(db_url)`` starts empty on both.
* ``empty_db_url`` — like ``db_url`` but with no tables at all (for schema tests).
* ``pg_admin_url`` — the maintenance database URL; ``make_pg_database()`` returns the URL of a
  new empty PostgreSQL database, dropped at the end of the session.

PostgreSQL is found at ``HPO_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432``).
If it is unreachable the postgres-parametrized tests FAIL, they do not skip: CI has it.
Deselect them locally with ``-m "not postgres"``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from hpo.storage.database import head_revision, upgrade

PG_SERVER = os.environ.get("HPO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
_HPO_TABLES = ("events", "metrics", "trials", "studies", "tokens")


def _admin_connect(admin_url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {admin_url} ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
            "or deselect these tests with -m 'not postgres'.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the PostgreSQL maintenance database (for CREATE/DROP DATABASE)."""
    return f"{PG_SERVER}/postgres"


@pytest.fixture(scope="session")
def make_pg_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Factory: each call creates a fresh, empty database and returns its psycopg URL.

    Every database made is dropped (WITH (FORCE)) at the end of the test session.
    """
    created: list[str] = []

    def make() -> str:
        name = f"hpo_test_{secrets.token_hex(6)}"
        with _admin_connect(pg_admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # Test data need not survive a crash: skip the fsync on every commit.
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        created.append(name)
        return f"postgresql+psycopg://{PG_SERVER.split('://', 1)[1]}/{name}"

    yield make
    if created:
        with _admin_connect(pg_admin_url) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_session_db(make_pg_database: Callable[[], str]) -> str:
    """The one PostgreSQL database the ``db_url`` tests of this session share."""
    return make_pg_database()


def _pg_reset(url: str, *, keep_schema: bool) -> None:
    """Leave the database at head with no rows (`keep_schema`) or with no tables at all."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        # A test that left a transaction open would make TRUNCATE wait forever.
        conn.execute("SET lock_timeout = '10s'")
        if keep_schema:
            row = None
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            if row is not None and row[0] == head_revision():
                conn.execute(f"TRUNCATE {', '.join(_HPO_TABLES)} RESTART IDENTITY CASCADE")
                return
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    if keep_schema:
        upgrade(url)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _backend_url(request: pytest.FixtureRequest, tmp_path: Path, *, keep_schema: bool) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hpo.db"
    url: str = request.getfixturevalue("_pg_session_db")
    _pg_reset(url, keep_schema=keep_schema)
    # Beside PostgreSQL the artifact store defaults to ./hpo-artifacts, the checkout here:
    # a test's trials keep their checkpoints in its own folder (a test of the store sets
    # its own). Drivers started as processes inherit it.
    if not os.environ.get("HPO_ARTIFACTS"):
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("HPO_ARTIFACTS", str(tmp_path / "artifacts"))
    return url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with no hpo rows, once per backend (see the module docstring)."""
    return _backend_url(request, tmp_path, keep_schema=True)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with no tables at all, once per backend."""
    return _backend_url(request, tmp_path, keep_schema=False)
