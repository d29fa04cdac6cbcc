"""Engines and schema lifecycle: one code path for SQLite (embedded) and PostgreSQL.

`create_engine(url)` returns an engine tuned for the backend:

* SQLite (default ``sqlite:///./hpo.db``): WAL journal (readers never block the writer),
  ``busy_timeout`` 30 s, foreign keys on, ``synchronous=NORMAL`` (durable at checkpoints,
  never corrupt). SQLAlchemy emits BEGIN itself, so every transaction is real: reads see one
  snapshot, and a connection bound with ``execution_options(hpo_write=True)`` starts with
  ``BEGIN IMMEDIATE``, taking the write lock up front instead of failing with "database is
  locked" when it upgrades a read lock mid-transaction.
* PostgreSQL through psycopg 3: ``postgresql://`` and ``postgres://`` are rewritten to
  ``postgresql+psycopg://``.

The pool is small: one process holds at most a handful of connections.

Migrations are run programmatically (`upgrade`, `current_revision`, `head_revision`): the
Alembic script directory ships inside the package, so no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Connection, Engine, make_url

from hpo.storage.errors import StorageError

__all__ = [
    "DEFAULT_URL",
    "MIGRATIONS_DIR",
    "create_engine",
    "current_revision",
    "head_revision",
    "normalize_url",
    "upgrade",
]

DEFAULT_URL = "sqlite:///./hpo.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

sqlite_dialect = SQLiteDialect_pysqlite()

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)


def normalize_url(url: str) -> str:
    """Return `url` with PostgreSQL URLs pointed at the psycopg 3 driver.

    >>> normalize_url("postgres://u@h/db")
    'postgresql+psycopg://u@h/db'
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str = DEFAULT_URL) -> Engine:
    """Create an engine for `url` (see the module docstring for what each backend gets)."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StorageError(f"invalid database URL {url!r}: {exc}") from exc
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {"pool_size": 4, "max_overflow": 4, "pool_timeout": 60}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StorageError(f"cannot open database {url!r}: {exc}") from exc
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it does not BEGIN before
        # SELECT); `_on_begin` emits BEGIN instead.
        dbapi_connection.isolation_level = None
        for pragma in _SQLITE_PRAGMAS:
            _sqlite_execute(dbapi_connection, pragma)

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Sent on the driver connection directly, as psycopg does on PostgreSQL, so that
        # statement counters (before_cursor_execute) see the same statements on both.
        mode = "IMMEDIATE" if conn.get_execution_options().get("hpo_write") else "DEFERRED"
        _sqlite_execute(conn.connection.driver_connection, f"BEGIN {mode}")


def _sqlite_execute(dbapi_connection: Any, statement: str) -> None:
    """Run `statement` on a raw sqlite3 connection, its errors raised as SQLAlchemy's.

    Errors raised in event hooks are not wrapped by SQLAlchemy: a "database is locked" from
    ``BEGIN IMMEDIATE`` would escape as a raw `sqlite3.OperationalError`, which neither the
    repository's session scope nor its callers' ``except StorageError`` would see.
    """
    try:
        dbapi_connection.execute(statement)
    except sqlite3.Error as exc:
        wrapped = sa.exc.DBAPIError.instance(
            statement, None, exc, sqlite3.Error, dialect=sqlite_dialect
        )
        raise wrapped from exc


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


# Alembic keeps the running migration in module globals (`alembic.context`, `alembic.op`):
# two threads migrating at once would clobber each other, so one process migrates at a time.
_MIGRATION_THREAD_LOCK = threading.Lock()
# Any constant: the key of the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x68706F


@contextmanager
def _connect(url: str | Engine, *, migrate: bool = False) -> Iterator[Connection]:
    """A connection to `url`; with `migrate`, one holding the schema lock.

    The lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) is taken before
    Alembic reads the current revision, so processes that open one empty database at the
    same time create the schema once: the others wait, then find it at head.
    """
    engine = url if isinstance(url, Engine) else create_engine(url)
    try:
        with engine.execution_options(hpo_write=migrate).connect() as connection:
            if migrate and connection.dialect.name == "postgresql":
                connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            yield connection
    except sa.exc.SQLAlchemyError as exc:
        raise StorageError(f"database error: {exc}") from exc
    finally:
        if engine is not url:
            engine.dispose()


def head_revision() -> str:
    """The revision this hpo release's code expects (e.g. ``"0001"``)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def known_revisions() -> set[str]:
    """Every revision this release knows, head included."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return {rev.revision for rev in script.walk_revisions()}


def current_revision(url: str | Engine) -> str | None:
    """The revision the database at `url` is stamped with; None if unstamped (or empty)."""
    with _connect(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str | Engine, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (head by default), in one transaction.

    Creates the schema in an empty database. Safe to run again: already at head is a no-op.
    """
    with _MIGRATION_THREAD_LOCK, _connect(url, migrate=True) as connection:
        command.upgrade(_alembic_config(connection), revision)
        connection.commit()


def downgrade(url: str | Engine, revision: str) -> None:
    """Migrate the database at `url` down to `revision` (``"base"`` drops every hpo table)."""
    with _MIGRATION_THREAD_LOCK, _connect(url, migrate=True) as connection:
        command.downgrade(_alembic_config(connection), revision)
        connection.commit()
