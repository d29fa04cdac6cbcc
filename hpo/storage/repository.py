"""The repository: the only place in hpo that reads or writes the database.

`Repository` offers plain methods (`create_study`, `claim_next_queued`, `record_results`,
`list_trials`, …) used by the driver, the CLI and the REST API. It is composed of one
mixin per concern: `studies` (studies, leases, tokens), `results` (the driver's write path)
and `queries` (reads); `base` holds the engine and the session scope, `records` the
records it returns. Every method runs in one
transaction through `Repository._session` (commit on success, rollback on error, every driver
error turned into `StorageError`) and returns frozen dataclass records, never ORM objects.

Promises:

* Thread-safe: one `Repository` may be shared by threads (each call takes its own pooled
  connection). Several processes may share one database; on SQLite writers are serialised
  by ``BEGIN IMMEDIATE`` and the 30 s busy timeout.
* Timestamps are timezone-aware UTC. Lease times come from the database's clock (hosts
  may disagree); the others from the clock of the calling process.
* Transient database errors (SQLite busy/locked, a lost PostgreSQL connection, a
  serialization failure) are retried with backoff for `retry_s` (``HPO_STORAGE_RETRY_S``,
  default 300 s), then raised as `StorageUnavailableError`; no driver error escapes as
  anything but `StorageError`.
* Fencing: the driver's writes carry its lease's token and are refused
  (`LeaseLostError`) once another driver claimed the study (see `results.py`).
* Non-finite numbers (NaN, ±inf) are stored as NULL (`None` in records): SQLite cannot keep
  NaN, and they never become a best value.
* "Best" follows the study's ``objective_mode``: ``"min"`` or ``"max"``, over each trial's one
  ``objective_value`` (its last attempt's last epoch, or best epoch with ``objective.value:
  best``). Trials that ran their full budget (``completed``) come first, pruned ones only
  when none did; running and failed trials never are; ties go to the earlier trial.
* List methods are paged, and each is one indexed query (plus, at most, one lookup of the
  study's objective mode when the sort direction must be inferred).
"""

from __future__ import annotations

from hpo.storage.base import RepositoryBase
from hpo.storage.errors import NotFoundError, SchemaOutdatedError, StorageError
from hpo.storage.queries import QueriesMixin
from hpo.storage.records import (
    BEST_ELIGIBLE_STATUSES,
    FINISHED_STUDY_STATUSES,
    PARAM_SORT_PREFIX,
    STUDY_STATUSES,
    TRIAL_COLUMN_SORTS,
    TRIAL_STATUSES,
    EventRecord,
    MetricRecord,
    ObjectiveMode,
    ResultRow,
    StudyRecord,
    StudyStatus,
    TrialRecord,
    TrialStatus,
)
from hpo.storage.results import ResultsMixin
from hpo.storage.studies import StudiesMixin

__all__ = [
    "BEST_ELIGIBLE_STATUSES",
    "FINISHED_STUDY_STATUSES",
    "PARAM_SORT_PREFIX",
    "STUDY_STATUSES",
    "TRIAL_COLUMN_SORTS",
    "TRIAL_STATUSES",
    "EventRecord",
    "MetricRecord",
    "NotFoundError",
    "ObjectiveMode",
    "Repository",
    "RepositoryBase",
    "ResultRow",
    "SchemaOutdatedError",
    "StorageError",
    "StudyRecord",
    "StudyStatus",
    "TrialRecord",
    "TrialStatus",
]


class Repository(StudiesMixin, ResultsMixin, QueriesMixin):
    """Studies, trials, metrics and events in one SQL database (SQLite or PostgreSQL).

    ``Repository(url)`` opens the engine and checks the schema: an empty database is
    migrated to head (when `create` is true), an older one raises `SchemaOutdatedError`
    (whose message gives the ``hpo db upgrade`` command), an unknown revision raises
    `StorageError`.
    """
