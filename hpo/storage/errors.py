"""Errors the storage layer raises; callers never see a driver or SQLAlchemy exception.

They live in their own module so that both the engine helpers (`database`) and the
`Repository` can raise them; `hpo.storage.repository` re-exports them.
"""

from __future__ import annotations

__all__ = ["NotFoundError", "SchemaOutdatedError", "StorageError"]


class StorageError(RuntimeError):
    """Any failure of the database: connection, constraint, lock timeout, unknown schema."""


class SchemaOutdatedError(StorageError):
    """The database schema is older than this hpo release; the message says how to upgrade."""

    def __init__(self, url: str, current: str | None, head: str) -> None:
        self.url = url
        self.current = current
        self.head = head
        super().__init__(
            f"database schema is at revision {current or 'base (empty)'}, this hpo needs {head}; "
            f"run: hpo db upgrade --db {url}"
        )


class NotFoundError(StorageError, LookupError):
    """The study or trial asked for does not exist."""
