"""Storage: studies, trials, metrics and events in SQL (SQLite embedded, or PostgreSQL).

Only this package imports SQLAlchemy and Alembic. Everything else uses `Repository` and the
frozen records it returns; see `repository.py` for what each method promises. The
repository is split by concern: `studies.py` (studies, leases, API tokens), `results.py`
(the driver's write path), `queries.py` (reads), over `base.py` (engine, session scope,
retries) and `records.py` (the records).
"""

from __future__ import annotations

from hpo.storage.database import DEFAULT_URL, current_revision, head_revision, upgrade
from hpo.storage.errors import (
    LeaseHeldError,
    LeaseLostError,
    NotFoundError,
    SchemaOutdatedError,
    StorageError,
    StorageUnavailableError,
)
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
    "LeaseHeldError",
    "LeaseLostError",
    "MetricRecord",
    "NotFoundError",
    "Repository",
    "ResultRow",
    "SchemaOutdatedError",
    "StorageError",
    "StorageUnavailableError",
    "StudyRecord",
    "TrialRecord",
    "current_revision",
    "head_revision",
    "upgrade",
]
