"""The repository's foundation: the engine, the one transaction scope and the schema check.

The concerns of the repository (`studies`, `results`, `queries`) are mixins over this base;
`hpo.storage.repository.Repository` composes them.

Outages: `_session` turns every driver error into `StorageError`, and the transient ones
(SQLite busy or locked, a lost or refused PostgreSQL connection, a serialization failure
or deadlock) into `TransientStorageError`. Every public method of the mixins (bar the
streaming ``iter_*`` ones) is wrapped by `retry_transient`: it re-runs the whole
transaction with exponential backoff (50 ms doubling to 5 s) for up to `retry_s` seconds
(``HPO_STORAGE_RETRY_S``, default 300), then raises `StorageUnavailableError`. The window
is checked between tries, and on SQLite each try itself may wait the 30 s busy timeout,
so there a lock is given up on after at least 30 s plus the window.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from hpo.storage.database import create_engine, head_revision, known_revisions, upgrade
from hpo.storage.errors import (
    SchemaOutdatedError,
    StorageError,
    StorageUnavailableError,
    TransientStorageError,
)

__all__ = ["DEFAULT_RETRY_S", "RepositoryBase", "is_transient", "retry_transient"]

log = logging.getLogger(__name__)

DEFAULT_RETRY_S = 300.0
_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 5.0
# SQLite's messages for a lock another connection holds (the rest are not transient:
# "no such table", "disk I/O error", …).
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")

C = TypeVar("C", bound=type)


def display_url(url: str) -> str:
    """`url` with any password masked (``***``): what messages and printed commands show."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def is_transient(exc: sa.exc.SQLAlchemyError) -> bool:
    """Whether `exc` may pass by itself, so that the transaction is worth running again."""
    if isinstance(exc, sa.exc.TimeoutError):  # every pooled connection busy
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    module = type(exc.orig).__module__
    if module.startswith("sqlite3"):
        return any(text in str(exc.orig) for text in _SQLITE_TRANSIENT)
    # psycopg's OperationalError covers a refused or dropped connection, a server shutting
    # down, serialization failures and deadlocks: all worth another try.
    return True


def retry_transient(method: Callable[..., Any]) -> Callable[..., Any]:
    """Re-run `method` while it fails with `TransientStorageError`, for `self.retry_s`."""

    @functools.wraps(method)
    def wrapper(self: RepositoryBase, *args: Any, **kwargs: Any) -> Any:
        deadline: float | None = None
        delay = _FIRST_DELAY_S
        while True:
            try:
                return method(self, *args, **kwargs)
            except TransientStorageError as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.retry_s
                if now >= deadline:
                    raise StorageUnavailableError(
                        f"the database stayed unavailable for {self.retry_s:g} s: {exc}"
                    ) from exc
                log.warning("%s: transient database error, retrying: %s", method.__name__, exc)
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, _MAX_DELAY_S)

    return wrapper


def retrying_methods(cls: C) -> C:
    """Wrap every public method `cls` defines (not generators) with `retry_transient`."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if inspect.isgeneratorfunction(value):
            continue
        setattr(cls, name, retry_transient(value))
    return cls


class RepositoryBase:
    """The engine and session scope shared by every part of `Repository`.

    ``RepositoryBase(url)`` opens the engine and checks the schema: an empty database is
    migrated to head (when `create` is true), an older one raises `SchemaOutdatedError`
    (whose message gives the ``hpo db upgrade`` command), an unknown revision raises
    `StorageError`.
    """

    def __init__(self, url: str, *, create: bool = True, retry_s: float | None = None) -> None:
        self.url = url
        if retry_s is None:
            retry_s = float(os.environ.get("HPO_STORAGE_RETRY_S", DEFAULT_RETRY_S))
        # How long a call waits out transient database errors (see the module docstring).
        self.retry_s = retry_s
        self.engine: Engine = create_engine(url)
        # Connections for write transactions: on SQLite they BEGIN IMMEDIATE (database.py).
        self._write_engine = self.engine.execution_options(hpo_write=True)
        try:
            retry_transient(RepositoryBase._check_schema)(self, create)
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        """Close every pooled connection. The repository must not be used afterwards."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- infrastructure ------------------------------------------------------------------

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        """The one transaction scope: commit on success, roll back on any error, and turn
        every SQLAlchemy/driver error into `StorageError`."""
        session = Session(
            bind=self._write_engine if write else self.engine,
            expire_on_commit=False,
            autoflush=False,
        )
        try:
            yield session
            session.commit()
        except sa.exc.SQLAlchemyError as exc:
            _rollback(session)
            error = TransientStorageError if is_transient(exc) else StorageError
            raise error(f"database error: {exc}") from exc
        except BaseException:
            _rollback(session)
            raise
        finally:
            try:
                session.close()
            except sa.exc.SQLAlchemyError:
                log.debug("closing a session on a broken connection failed", exc_info=True)

    def _db_now(self, session: Session) -> datetime:
        """The database's clock, read in `session`'s transaction: lease times use it, so
        hosts whose clocks disagree still agree on whose lease has expired."""
        if self.engine.dialect.name == "postgresql":
            value = session.execute(sa.text("SELECT now()")).scalar_one()
            return value.astimezone(UTC)  # type: ignore[no-any-return]
        text = session.execute(sa.text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    def _display_url(self) -> str:
        return display_url(self.url)

    def _check_schema(self, create: bool) -> None:
        with self._session() as session:
            tables = set(sa.inspect(session.connection()).get_table_names())
            current = None
            if "alembic_version" in tables:
                current = session.execute(
                    sa.text("SELECT version_num FROM alembic_version")
                ).scalar()
        head = head_revision()
        if not tables:
            if not create:
                raise SchemaOutdatedError(self._display_url(), None, head)
            upgrade(self.engine)
            return
        if current == head:
            return
        if "alembic_version" not in tables:
            raise StorageError(
                f"{self._display_url()} holds tables but no hpo schema version; "
                "is it an hpo database?"
            )
        if current is None or current in known_revisions():
            raise SchemaOutdatedError(self._display_url(), current, head)
        raise StorageError(
            f"database schema is at revision {current}, unknown to this hpo (head {head}); "
            "was it created by a newer hpo release?"
        )


def _rollback(session: Session) -> None:
    # On a connection that just broke the rollback fails too; the error that matters is
    # the one being raised.
    try:
        session.rollback()
    except sa.exc.SQLAlchemyError:
        log.debug("rollback on a broken connection failed", exc_info=True)
