"""The repository's foundation: the engine, the one transaction scope and the schema check.

The concerns of the repository (`studies`, `results`, `queries`) are mixins over this base;
`hpo.storage.repository.Repository` composes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from hpo.storage.database import create_engine, head_revision, known_revisions, upgrade
from hpo.storage.errors import SchemaOutdatedError, StorageError

__all__ = ["RepositoryBase"]


class RepositoryBase:
    """The engine and session scope shared by every part of `Repository`.

    ``RepositoryBase(url)`` opens the engine and checks the schema: an empty database is
    migrated to head (when `create` is true), an older one raises `SchemaOutdatedError`
    (whose message gives the ``hpo db upgrade`` command), an unknown revision raises
    `StorageError`.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        # Connections for write transactions: on SQLite they BEGIN IMMEDIATE (database.py).
        self._write_engine = self.engine.execution_options(hpo_write=True)
        try:
            self._check_schema(create)
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
            session.rollback()
            raise StorageError(f"database error: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _display_url(self) -> str:
        try:
            return sa.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return self.url

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
