"""Storage: studies, trials, metrics and events in SQL (SQLite embedded, or PostgreSQL).

Only this package imports SQLAlchemy and Alembic. Everything else uses `Repository` and the
frozen records it returns; see `repository.py` for what each method promises.
"""

from __future__ import annotations

from hpo.storage.database import DEFAULT_URL, current_revision, head_revision, upgrade
from hpo.storage.errors import NotFoundError, SchemaOutdatedError, StorageError
from hpo.storage.repository import (
    EventRecord,
    MetricRecord,
    Repository,
    ResultRow,
    StudyRecord,
    TrialRecord,
)

__all__ = [
    "DEFAULT_URL",
    "EventRecord",
    "MetricRecord",
    "NotFoundError",
    "Repository",
    "ResultRow",
    "SchemaOutdatedError",
    "StorageError",
    "StudyRecord",
    "TrialRecord",
    "current_revision",
    "head_revision",
    "upgrade",
]
