"""Errors the storage layer raises; callers never see a driver or SQLAlchemy exception.

They live in their own module so that both the engine helpers (`database`) and the
`Repository` can raise them; `hpo.storage.repository` re-exports them.
"""

from __future__ import annotations

__all__ = [
    "LeaseHeldError",
    "LeaseLostError",
    "NotFoundError",
    "SchemaOutdatedError",
    "StorageError",
    "StorageUnavailableError",
    "TransientStorageError",
]


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


class TransientStorageError(StorageError):
    """A failure that may pass by itself: SQLite busy or locked, a lost or refused
    PostgreSQL connection (a restart), a serialization failure or deadlock. Repository
    methods retry these with backoff for `Repository.retry_s` before giving up with
    `StorageUnavailableError`."""


class StorageUnavailableError(StorageError):
    """Transient failures lasted longer than the retry window: the database is down."""


class LeaseLostError(StorageError):
    """A write carried a fencing token that is no longer the study's: another driver
    claimed the study since. The writer must stop; nothing it sends is stored."""


class LeaseHeldError(StorageError):
    """The study is held by another live lease; `owner` and `expires_at` say whose and
    until when (by the database's clock)."""

    def __init__(self, study_id: int, owner: str | None, expires_at: object) -> None:
        self.study_id = study_id
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(
            f"study {study_id} is being run by {owner or 'another driver'} "
            f"(lease until {expires_at}); it can be resumed once that lease lapses"
        )
