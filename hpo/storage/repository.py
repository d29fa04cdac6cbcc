"""The repository: the only place in hpo that reads or writes the database.

`Repository` offers plain methods (`create_study`, `claim_next_queued`, `record_results`,
`list_trials`, …) used by the driver, the CLI and the REST API. Every method runs in one
transaction through `Repository._session` (commit on success, rollback on error, every driver
error turned into `StorageError`) and returns frozen dataclass records, never ORM objects.

Promises:

* Thread-safe: one `Repository` may be shared by threads (each call takes its own pooled
  connection). Several processes may share one database; on SQLite writers are serialised
  by ``BEGIN IMMEDIATE`` and the 30 s busy timeout.
* Timestamps are timezone-aware UTC, taken from the clock of the calling process.
* Non-finite numbers (NaN, ±inf) are stored as NULL (`None` in records): SQLite cannot keep
  NaN, and they never become a best value.
* "Best" follows the study's ``objective_mode``: ``"min"`` or ``"max"``. Completed and pruned
  trials may be best (a pruned trial's values were really measured); running and failed
  trials never are.
* List methods are paged, and each is one indexed query (plus, at most, one lookup of the
  study's objective mode when the sort direction must be inferred).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, get_args

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from hpo.storage.database import create_engine, head_revision, known_revisions, upgrade
from hpo.storage.errors import NotFoundError, SchemaOutdatedError, StorageError
from hpo.storage.models import Event, Metric, Study, Token, Trial

__all__ = [
    "EventRecord",
    "MetricRecord",
    "NotFoundError",
    "Repository",
    "ResultRow",
    "SchemaOutdatedError",
    "StorageError",
    "StudyRecord",
    "StudyStatus",
    "TrialRecord",
    "TrialStatus",
]

StudyStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
TrialStatus = Literal["running", "completed", "pruned", "failed"]
ObjectiveMode = Literal["min", "max"]

STUDY_STATUSES: tuple[str, ...] = get_args(StudyStatus)
TRIAL_STATUSES: tuple[str, ...] = get_args(TrialStatus)
FINISHED_STUDY_STATUSES = frozenset({"completed", "failed", "cancelled"})
# Trials whose best_value may make them the study's best (see the module docstring).
BEST_ELIGIBLE_STATUSES = ("completed", "pruned")
TRIAL_COLUMN_SORTS = frozenset({"number", "best_value", "last_value", "epochs_run", "started_at"})
# `sort="param:lr"` orders trials by a hyperparameter of their config.
PARAM_SORT_PREFIX = "param:"

# Rows per multi-VALUES INSERT: 4 parameters a row stays under SQLite's 32,766 limit.
_INSERT_CHUNK = 5000


@dataclass(frozen=True)
class StudyRecord:
    """A study as stored. `spec` is the validated spec as a JSON dict."""

    id: int
    name: str
    owner: str | None
    spec: dict[str, Any]
    status: str
    objective_metric: str
    objective_mode: str
    n_trials_target: int | None
    last_trial_number: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    best_trial_id: int | None
    best_value: float | None
    error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool


@dataclass(frozen=True)
class TrialRecord:
    """A trial as stored: `number` counts from 1 within its study; `epochs_run` is the
    highest step reported; `final_metrics` the metrics of that step."""

    id: int
    study_id: int
    number: int
    ray_trial_id: str | None
    status: str
    config: dict[str, Any]
    seed: int | None
    started_at: datetime
    finished_at: datetime | None
    epochs_run: int
    last_value: float | None
    best_value: float | None
    final_metrics: dict[str, Any]
    error: str | None
    provenance: dict[str, Any]


@dataclass(frozen=True)
class MetricRecord:
    """One reported value; `value` is None where a non-finite number was reported."""

    trial_id: int
    step: int
    name: str
    value: float | None


@dataclass(frozen=True)
class EventRecord:
    """One line of a study's log; ids increase, so `after_id` pages forward."""

    id: int
    study_id: int
    trial_id: int | None
    kind: str
    message: str
    data: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class ResultRow:
    """One report of a trial: every metric at `step`, and the objective's value (if any)."""

    trial_id: int
    step: int
    metrics: Mapping[str, float]
    objective: float | None


R = TypeVar("R")


def _record(cls: type[R], row: Any) -> R:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _finite(value: float | None) -> float | None:
    """`value` as a float, or None where it is missing or not finite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _now() -> datetime:
    return datetime.now(UTC)


def _check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


class Repository:
    """Studies, trials, metrics and events in one SQL database (SQLite or PostgreSQL).

    ``Repository(url)`` opens the engine and checks the schema: an empty database is
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

    def __enter__(self) -> Repository:
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

    # -- studies -------------------------------------------------------------------------

    def create_study(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        objective_metric: str,
        objective_mode: ObjectiveMode,
        n_trials_target: int | None,
        owner: str | None = None,
        status: StudyStatus = "queued",
    ) -> StudyRecord:
        """Store a new study (queued by default, so that a runner may claim it)."""
        _check(objective_mode, ("min", "max"), "objective mode")
        _check(status, STUDY_STATUSES, "study status")
        now = _now()
        study = Study(
            name=name,
            owner=owner,
            spec=spec,
            status=status,
            objective_metric=objective_metric,
            objective_mode=objective_mode,
            n_trials_target=n_trials_target,
            last_trial_number=0,
            created_at=now,
            started_at=now if status == "running" else None,
            finished_at=now if status in FINISHED_STUDY_STATUSES else None,
            cancel_requested=False,
        )
        with self._session(write=True) as session:
            session.add(study)
            session.flush()
            return _record(StudyRecord, study)

    def get_study(self, study_id: int) -> StudyRecord:
        """The study `study_id`; raises `NotFoundError` if there is none."""
        with self._session() as session:
            study = session.get(Study, study_id)
            if study is None:
                raise NotFoundError(f"no study with id {study_id}")
            return _record(StudyRecord, study)

    @staticmethod
    def _study_filter(
        stmt: sa.Select[Any], status: str | None, owner: str | None
    ) -> sa.Select[Any]:
        if status is not None:
            stmt = stmt.where(Study.status == status)
        if owner is not None:
            stmt = stmt.where(Study.owner == owner)
        return stmt

    def list_studies(
        self,
        *,
        status: StudyStatus | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[StudyRecord]:
        """Studies, newest first, optionally filtered by status and owner (indexed)."""
        stmt = self._study_filter(sa.select(Study), status, owner)
        stmt = stmt.order_by(Study.id.desc()).limit(limit).offset(offset)
        with self._session() as session:
            return [_record(StudyRecord, s) for s in session.scalars(stmt)]

    def count_studies(self, *, status: StudyStatus | None = None, owner: str | None = None) -> int:
        """How many studies `list_studies` would page through with the same filters."""
        stmt = self._study_filter(sa.select(sa.func.count()).select_from(Study), status, owner)
        with self._session() as session:
            return int(session.execute(stmt).scalar_one())

    def set_study_status(
        self, study_id: int, status: StudyStatus, *, error: str | None = None
    ) -> None:
        """Move a study to `status`: ``running`` stamps `started_at` (once); a finished
        status stamps `finished_at` and drops the runner lease; ``queued`` clears both."""
        _check(status, STUDY_STATUSES, "study status")
        now = _now()
        values: dict[str, Any] = {"status": status, "error": error}
        if status == "running":
            values["started_at"] = sa.func.coalesce(Study.started_at, now)
            values["finished_at"] = None
        elif status in FINISHED_STUDY_STATUSES:
            values.update(finished_at=now, lease_owner=None, lease_expires_at=None)
        else:
            values.update(finished_at=None, lease_owner=None, lease_expires_at=None)
        stmt = sa.update(Study).where(Study.id == study_id).values(**values)
        with self._session(write=True) as session:
            if session.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
                raise NotFoundError(f"no study with id {study_id}")

    def delete_study(self, study_id: int) -> None:
        """Delete a study with its trials, metrics and events (foreign-key cascades)."""
        with self._session(write=True) as session:
            result = session.execute(sa.delete(Study).where(Study.id == study_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFoundError(f"no study with id {study_id}")

    def request_cancel(self, study_id: int) -> bool:
        """Flag a queued or running study for cancellation; False if it already finished.

        The flag is what a running study's driver polls: it stops the trials, closes them
        and sets the study ``cancelled``. A queued study flagged here that a runner claims
        before `cancel_queued` is ended the same way by its driver, as soon as it starts.
        """
        stmt = (
            sa.update(Study)
            .where(Study.id == study_id, Study.status.in_(("queued", "running")))
            .values(cancel_requested=True)
        )
        with self._session(write=True) as session:
            return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    def cancel_queued(self, study_id: int) -> bool:
        """Move a study from ``queued`` to ``cancelled`` in one statement; False if it is
        not queued (a runner may have claimed it a moment ago: cancel it by flag then)."""
        now = _now()
        stmt = (
            sa.update(Study)
            .where(Study.id == study_id, Study.status == "queued")
            .values(
                status="cancelled",
                cancel_requested=True,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        with self._session(write=True) as session:
            return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    def cancel_requested(self, study_id: int) -> bool:
        """Whether the study was flagged by `request_cancel` (one primary-key read, cheap
        enough for a driver to poll every second); False for a missing study."""
        stmt = sa.select(Study.cancel_requested).where(Study.id == study_id)
        with self._session() as session:
            return bool(session.execute(stmt).scalar_one_or_none())

    def delete_study_unless_running(self, study_id: int) -> bool:
        """Delete a study (as `delete_study`) only if it is not ``running``, in one
        statement, so a runner claiming it at the same moment cannot lose its study
        mid-run. False if it is running; raises `NotFoundError` if there is none."""
        with self._session(write=True) as session:
            result = session.execute(
                sa.delete(Study).where(Study.id == study_id, Study.status != "running")
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if session.get(Study, study_id) is None:
                raise NotFoundError(f"no study with id {study_id}")
            return False

    # -- runner leases -------------------------------------------------------------------

    @staticmethod
    def _claimable(now: datetime) -> sa.ColumnElement[bool]:
        """Queued, or running under a lease that has expired (its runner is gone)."""
        return sa.or_(
            Study.status == "queued",
            sa.and_(Study.status == "running", Study.lease_expires_at < now),
        )

    @staticmethod
    def _claim_values(worker: str, lease_s: float, now: datetime) -> dict[str, Any]:
        return {
            "status": "running",
            "lease_owner": worker,
            "lease_expires_at": now + timedelta(seconds=lease_s),
            "heartbeat_at": now,
            "started_at": sa.func.coalesce(Study.started_at, now),
        }

    def claim_study(self, study_id: int, worker: str, lease_s: float) -> bool:
        """Atomically take study `study_id` for `worker` for `lease_s` seconds.

        Succeeds (and sets the study running) only if it is queued or its lease expired;
        of several workers racing for one study exactly one gets True.
        """
        now = _now()
        stmt = (
            sa.update(Study)
            .where(Study.id == study_id, self._claimable(now))
            .values(**self._claim_values(worker, lease_s, now))
        )
        with self._session(write=True) as session:
            return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    def claim_next_queued(self, worker: str, lease_s: float) -> StudyRecord | None:
        """Atomically take the oldest claimable study for `worker`; None if there is none.

        One ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: concurrent
        runners on PostgreSQL skip each other's candidate; on SQLite the write lock taken
        by ``BEGIN IMMEDIATE`` serialises them. Each study is handed out once per lease.
        """
        now = _now()
        candidate = (
            sa.select(Study.id)
            .where(self._claimable(now))
            .order_by(Study.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            sa.update(Study)
            .where(Study.id == candidate, self._claimable(now))
            .values(**self._claim_values(worker, lease_s, now))
            .returning(Study)
        )
        with self._session(write=True) as session:
            study = session.scalars(stmt).one_or_none()
            return None if study is None else _record(StudyRecord, study)

    def renew_lease(self, study_id: int, worker: str, lease_s: float) -> bool:
        """Extend `worker`'s lease by `lease_s` from now; False if it no longer holds it."""
        now = _now()
        stmt = (
            sa.update(Study)
            .where(Study.id == study_id, Study.lease_owner == worker, Study.status == "running")
            .values(lease_expires_at=now + timedelta(seconds=lease_s), heartbeat_at=now)
        )
        with self._session(write=True) as session:
            return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    def release_lease(self, study_id: int, worker: str) -> None:
        """Drop `worker`'s lease (a no-op if another worker holds it)."""
        stmt = (
            sa.update(Study)
            .where(Study.id == study_id, Study.lease_owner == worker)
            .values(lease_owner=None, lease_expires_at=None)
        )
        with self._session(write=True) as session:
            session.execute(stmt)

    # -- API tokens ----------------------------------------------------------------------

    def create_token(self, name: str, token_hash: str, admin: bool) -> None:
        """Store the hash of a user's token. Raises `ValueError` if `name` already has
        one (names are unique: one token per user)."""
        token = Token(name=name, token_hash=token_hash, admin=admin, created_at=_now())
        exists = sa.select(Token.id).where(Token.name == name)
        with self._session(write=True) as session:
            if session.execute(exists).first() is not None:
                raise ValueError(f"user {name!r} already has a token")
            session.add(token)

    def user_for_token_hash(self, token_hash: str) -> tuple[str, bool] | None:
        """(name, admin) of the token with this hash, or None (one unique-index lookup)."""
        stmt = sa.select(Token.name, Token.admin).where(Token.token_hash == token_hash)
        with self._session() as session:
            row = session.execute(stmt).one_or_none()
            return None if row is None else (row.name, bool(row.admin))

    def count_tokens(self) -> int:
        """How many tokens are stored (any at all turns authentication on)."""
        with self._session() as session:
            return int(session.execute(sa.select(sa.func.count()).select_from(Token)).scalar_one())

    # -- trials --------------------------------------------------------------------------

    def create_trial(
        self,
        study_id: int,
        *,
        config: dict[str, Any],
        seed: int | None,
        ray_trial_id: str | None,
        provenance: dict[str, Any],
    ) -> TrialRecord:
        """Store a running trial with the study's next number (1, 2, …, without gaps).

        The number comes from incrementing ``studies.last_trial_number`` in the same
        transaction, which locks the study row: concurrent writers never share a number.
        """
        bump = (
            sa.update(Study)
            .where(Study.id == study_id)
            .values(last_trial_number=Study.last_trial_number + 1)
            .returning(Study.last_trial_number)
        )
        with self._session(write=True) as session:
            number = session.execute(bump).scalar_one_or_none()
            if number is None:
                raise NotFoundError(f"no study with id {study_id}")
            trial = Trial(
                study_id=study_id,
                number=number,
                ray_trial_id=ray_trial_id,
                status="running",
                config=config,
                seed=seed,
                started_at=_now(),
                epochs_run=0,
                final_metrics={},
                provenance=provenance,
            )
            session.add(trial)
            session.flush()
            return _record(TrialRecord, trial)

    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        """Trial `number` of study `study_id`; raises `NotFoundError` if there is none."""
        stmt = sa.select(Trial).where(Trial.study_id == study_id, Trial.number == number)
        with self._session() as session:
            trial = session.scalars(stmt).one_or_none()
            if trial is None:
                raise NotFoundError(f"study {study_id} has no trial {number}")
            return _record(TrialRecord, trial)

    def get_trial_by_ray_id(self, study_id: int, ray_trial_id: str) -> TrialRecord | None:
        """The trial Ray knows as `ray_trial_id` in this study, or None."""
        stmt = sa.select(Trial).where(
            Trial.study_id == study_id, Trial.ray_trial_id == ray_trial_id
        )
        with self._session() as session:
            trial = session.scalars(stmt).one_or_none()
            return None if trial is None else _record(TrialRecord, trial)

    def add_provenance(self, trial_id: int, provenance: Mapping[str, Any]) -> None:
        """Merge `provenance` into the trial's (keys given here win): some facts, such as
        the device and host a trial runs on, are only known once it reports."""
        with self._session(write=True) as session:
            trial = session.get(Trial, trial_id, with_for_update=True)
            if trial is None:
                raise NotFoundError(f"no trial with id {trial_id}")
            trial.provenance = {**trial.provenance, **provenance}

    def record_results(self, results: Sequence[ResultRow]) -> None:
        """Store a batch of reports in one transaction.

        Metric rows are upserted on (trial, step, name), so a re-sent step never duplicates
        (the latest value wins). Each trial's summary is updated: `epochs_run` = highest
        step, `last_value` and `final_metrics` from that step, `best_value` the best finite
        objective seen (by the study's mode). Three statements per batch whatever its size:
        read the trials' summaries, insert the metrics, update the trials.
        """
        if not results:
            return
        trial_ids = sorted({r.trial_id for r in results})
        summaries = (
            sa.select(
                Trial.id,
                Trial.epochs_run,
                Trial.last_value,
                Trial.best_value,
                Trial.final_metrics,
                Study.objective_mode,
            )
            .join(Study, Study.id == Trial.study_id)
            .where(Trial.id.in_(trial_ids))
            .with_for_update(of=Trial)
        )
        rows = [
            {"trial_id": r.trial_id, "step": r.step, "name": name, "value": _finite(value)}
            for r in results
            for name, value in r.metrics.items()
        ]
        with self._session(write=True) as session:
            current = {row.id: row for row in session.execute(summaries)}
            missing = set(trial_ids) - current.keys()
            if missing:
                raise NotFoundError(f"no trials with ids {sorted(missing)}")
            for start in range(0, len(rows), _INSERT_CHUNK):
                session.execute(self._upsert_metrics(rows[start : start + _INSERT_CHUNK]))
            by_trial: dict[int, list[ResultRow]] = {tid: [] for tid in trial_ids}
            for result in results:
                by_trial[result.trial_id].append(result)
            updates = [self._summarise(current[tid], by_trial[tid]) for tid in trial_ids]
            session.execute(sa.update(Trial), updates)

    def _upsert_metrics(self, rows: list[dict[str, Any]]) -> sa.Executable:
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(Metric).values(rows)
        return stmt.on_conflict_do_update(
            index_elements=[Metric.trial_id, Metric.step, Metric.name],
            set_={"value": stmt.excluded.value},
        )

    @staticmethod
    def _summarise(current: Any, reports: list[ResultRow]) -> dict[str, Any]:
        """New summary columns of one trial after `reports` (see `record_results`)."""
        better = min if current.objective_mode == "min" else max
        epochs_run = current.epochs_run
        last_value = current.last_value
        final_metrics = current.final_metrics
        best = current.best_value
        for report in sorted(reports, key=lambda r: r.step):
            objective = _finite(report.objective)
            if report.step >= epochs_run:
                epochs_run = report.step
                last_value = objective
                final_metrics = {k: _finite(v) for k, v in report.metrics.items()}
            if objective is not None:
                best = objective if best is None else better(best, objective)
        return {
            "id": current.id,
            "epochs_run": epochs_run,
            "last_value": last_value,
            "best_value": best,
            "final_metrics": final_metrics,
        }

    def finish_trial(self, trial_id: int, status: TrialStatus, *, error: str | None = None) -> None:
        """Close a trial with `status` and recompute its study's best trial and value."""
        _check(status, TRIAL_STATUSES, "trial status")
        stmt = (
            sa.update(Trial)
            .where(Trial.id == trial_id)
            .values(status=status, error=error, finished_at=_now())
            .returning(Trial.study_id)
        )
        with self._session(write=True) as session:
            study_id = session.execute(stmt).scalar_one_or_none()
            if study_id is None:
                raise NotFoundError(f"no trial with id {trial_id}")
            self._update_study_best(session, study_id)

    def close_running_trials(
        self,
        study_id: int,
        status: TrialStatus = "failed",
        error: str | None = "the driver running this trial exited",
        *,
        done_at_step: int | None = None,
    ) -> int:
        """Close every trial of the study still ``running`` (its driver is gone, the study
        was cancelled or ran out of time); returns how many were closed.

        A trial that already reported step `done_at_step` (the budget's last epoch) had
        finished its training, only its completion was not recorded yet: it is closed as
        ``completed``, not as `status`. Used on resume too: nothing stays running without
        a driver.
        """
        _check(status, TRIAL_STATUSES, "trial status")
        running = sa.update(Trial).where(Trial.study_id == study_id, Trial.status == "running")
        now = _now()
        with self._session(write=True) as session:
            done = 0
            if done_at_step is not None:
                finished = running.where(Trial.epochs_run >= done_at_step).values(
                    status="completed", error=None, finished_at=now
                )
                done = int(session.execute(finished).rowcount)  # type: ignore[attr-defined]
            stopped = running.values(status=status, error=error, finished_at=now)
            closed = int(session.execute(stopped).rowcount)  # type: ignore[attr-defined]
            if done or (closed and status in BEST_ELIGIBLE_STATUSES):
                self._update_study_best(session, study_id)
            return done + closed

    @staticmethod
    def _best_order(mode: str) -> list[sa.ColumnElement[Any]]:
        value = Trial.best_value.asc() if mode == "min" else Trial.best_value.desc()
        return [value, Trial.number.asc()]

    def _update_study_best(self, session: Session, study_id: int) -> None:
        mode = session.execute(
            sa.select(Study.objective_mode).where(Study.id == study_id)
        ).scalar_one()
        best = session.execute(
            sa.select(Trial.id, Trial.best_value)
            .where(
                Trial.study_id == study_id,
                Trial.status.in_(BEST_ELIGIBLE_STATUSES),
                Trial.best_value.is_not(None),
            )
            .order_by(*self._best_order(mode))
            .limit(1)
        ).one_or_none()
        session.execute(
            sa.update(Study)
            .where(Study.id == study_id)
            .values(
                best_trial_id=None if best is None else best.id,
                best_value=None if best is None else best.best_value,
            )
        )

    def list_trials(
        self,
        study_id: int,
        *,
        status: TrialStatus | None = None,
        sort: str | None = None,
        descending: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[TrialRecord]:
        """One page of a study's trials in one query.

        `sort` is ``number`` (default), ``best_value``, ``last_value``, ``epochs_run``,
        ``started_at``, ``param:NAME`` (a hyperparameter of the config: numbers by value,
        strings alphabetically; not indexed, so a sort over the study's trials) or a
        metric name (ordered by the metric's value at the trial's last step). Missing
        values sort last. Without `descending`, the objective (``best_value``,
        ``last_value`` or the objective metric) sorts best first and anything else ascends;
        only then is the study's mode looked up (a second statement).
        """
        sort = sort or "number"
        stmt = sa.select(Trial).where(Trial.study_id == study_id)
        if status is not None:
            stmt = stmt.where(Trial.status == status)
        with self._session() as session:
            key: Any
            if sort in TRIAL_COLUMN_SORTS:
                key = getattr(Trial, sort)
            elif sort.startswith(PARAM_SORT_PREFIX):
                key = self._config_value(sort.removeprefix(PARAM_SORT_PREFIX))
            else:
                last = sa.orm.aliased(Metric)
                stmt = stmt.outerjoin(
                    last,
                    sa.and_(
                        last.trial_id == Trial.id,
                        last.step == Trial.epochs_run,
                        last.name == sort,
                    ),
                )
                key = last.value
            if descending is None:
                descending = False
                metric = sort not in TRIAL_COLUMN_SORTS and not sort.startswith(PARAM_SORT_PREFIX)
                if sort in ("best_value", "last_value") or metric:
                    study = session.execute(
                        sa.select(Study.objective_metric, Study.objective_mode).where(
                            Study.id == study_id
                        )
                    ).one_or_none()
                    if study is not None and (
                        sort in TRIAL_COLUMN_SORTS or sort == study.objective_metric
                    ):
                        descending = study.objective_mode == "max"
            ordered = (key.desc() if descending else key.asc()).nulls_last()
            tie = Trial.number.desc() if descending and sort == "number" else Trial.number.asc()
            stmt = stmt.order_by(ordered, tie) if sort != "number" else stmt.order_by(tie)
            stmt = stmt.limit(limit).offset(offset)
            return [_record(TrialRecord, t) for t in session.scalars(stmt)]

    def _config_value(self, name: str) -> sa.ColumnElement[Any]:
        """A hyperparameter of `Trial.config` with its JSON type, so that numbers sort by
        value and strings alphabetically: PostgreSQL's jsonb ``->``, SQLite's
        ``json_extract`` (native numbers and text). Absent keys (conditional parameters)
        are NULL. A choice mixing numbers and strings sorts by type first, strings before
        numbers on PostgreSQL and after them on SQLite."""
        if self.engine.dialect.name == "postgresql":
            return Trial.config.op("->")(sa.literal(name, sa.String))
        path = '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return sa.func.json_extract(Trial.config, sa.literal(path, sa.String))

    def best_trial(self, study_id: int) -> TrialRecord | None:
        """The study's best completed-or-pruned trial (kept by `finish_trial`), one query."""
        stmt = (
            sa.select(Trial)
            .join(Study, Study.best_trial_id == Trial.id)
            .where(Study.id == study_id)
        )
        with self._session() as session:
            trial = session.scalars(stmt).one_or_none()
            return None if trial is None else _record(TrialRecord, trial)

    def count_trials(self, study_id: int) -> dict[str, int]:
        """Trials per status (every status present, zeros included), one GROUP BY."""
        stmt = (
            sa.select(Trial.status, sa.func.count())
            .where(Trial.study_id == study_id)
            .group_by(Trial.status)
        )
        counts = dict.fromkeys(TRIAL_STATUSES, 0)
        with self._session() as session:
            for status, n in session.execute(stmt):
                counts[status] = int(n)
        return counts

    def count_trials_of(self, study_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """`count_trials` for several studies (a page of a list) in one GROUP BY."""
        counts = {sid: dict.fromkeys(TRIAL_STATUSES, 0) for sid in study_ids}
        if not study_ids:
            return counts
        stmt = (
            sa.select(Trial.study_id, Trial.status, sa.func.count())
            .where(Trial.study_id.in_(list(study_ids)))
            .group_by(Trial.study_id, Trial.status)
        )
        with self._session() as session:
            for study_id, status, n in session.execute(stmt):
                counts[study_id][status] = int(n)
        return counts

    def iter_trials(self, study_id: int, batch: int = 1000) -> Iterator[TrialRecord]:
        """Every trial of the study by number, streamed `batch` rows at a time.

        The read transaction stays open until the iterator is exhausted or closed.
        """
        stmt = (
            sa.select(Trial)
            .where(Trial.study_id == study_id)
            .order_by(Trial.number)
            .execution_options(yield_per=batch)
        )
        with self._session() as session:
            for trial in session.scalars(stmt):
                yield _record(TrialRecord, trial)

    def iter_trial_values(
        self, study_id: int, batch: int = 5000
    ) -> Iterator[tuple[int, str, float | None]]:
        """(number, status, best_value) of every trial by number, streamed.

        Three narrow columns and no JSON: what a summary over all of a big study's trials
        (best-so-far, a sample to draw) needs, at a fraction of `iter_trials`' cost.
        """
        stmt = (
            sa.select(Trial.number, Trial.status, Trial.best_value)
            .where(Trial.study_id == study_id)
            .order_by(Trial.number)
            .execution_options(yield_per=batch)
        )
        with self._session() as session:
            for number, status, best_value in session.execute(stmt):
                yield int(number), str(status), best_value

    def trial_configs(
        self, study_id: int, numbers: Sequence[int]
    ) -> list[tuple[int, str, float | None, dict[str, Any]]]:
        """(number, status, best_value, config) of the trials with these numbers, by
        number, in one query: a quarter of `trials_by_numbers`' cost for plots of many."""
        if not numbers:
            return []
        stmt = (
            sa.select(Trial.number, Trial.status, Trial.best_value, Trial.config)
            .where(Trial.study_id == study_id, Trial.number.in_(list(numbers)))
            .order_by(Trial.number)
        )
        with self._session() as session:
            return [(int(n), str(s), v, dict(c)) for n, s, v, c in session.execute(stmt)]

    # -- metrics -------------------------------------------------------------------------

    def trial_metrics(self, trial_id: int) -> list[MetricRecord]:
        """A trial's whole history, ordered by step then name (primary-key order)."""
        stmt = (
            sa.select(Metric).where(Metric.trial_id == trial_id).order_by(Metric.step, Metric.name)
        )
        with self._session() as session:
            return [_record(MetricRecord, m) for m in session.scalars(stmt)]

    def trials_by_numbers(self, study_id: int, numbers: Sequence[int]) -> list[TrialRecord]:
        """The study's trials with these numbers (missing ones skipped), in one query."""
        if not numbers:
            return []
        stmt = (
            sa.select(Trial)
            .where(Trial.study_id == study_id, Trial.number.in_(list(numbers)))
            .order_by(Trial.number)
        )
        with self._session() as session:
            return [_record(TrialRecord, t) for t in session.scalars(stmt)]

    def metric_series(
        self, trial_ids: Sequence[int], name: str
    ) -> dict[int, list[tuple[int, float | None]]]:
        """One metric's (step, value) history for each of several trials, in one query."""
        series: dict[int, list[tuple[int, float | None]]] = {t: [] for t in trial_ids}
        if not trial_ids:
            return series
        stmt = (
            sa.select(Metric.trial_id, Metric.step, Metric.value)
            .where(Metric.trial_id.in_(list(trial_ids)), Metric.name == name)
            .order_by(Metric.trial_id, Metric.step)
        )
        with self._session() as session:
            for trial_id, step, value in session.execute(stmt):
                series[trial_id].append((step, value))
        return series

    def iter_study_metrics(self, study_id: int, batch: int = 5000) -> Iterator[MetricRecord]:
        """Every metric of the study, by trial, step and name, streamed (for export).

        The read transaction stays open until the iterator is exhausted or closed.
        """
        stmt = (
            sa.select(Metric.trial_id, Metric.step, Metric.name, Metric.value)
            .join(Trial, Trial.id == Metric.trial_id)
            .where(Trial.study_id == study_id)
            .order_by(Metric.trial_id, Metric.step, Metric.name)
            .execution_options(yield_per=batch)
        )
        with self._session() as session:
            for row in session.execute(stmt):
                yield MetricRecord(*row)

    # -- events --------------------------------------------------------------------------

    def add_event(
        self,
        study_id: int,
        kind: str,
        message: str,
        *,
        trial_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> EventRecord:
        """Append a line to the study's log (kinds: ``started``, ``trial_started``,
        ``trial_finished``, ``trial_pruned``, ``trial_failed``, ``resumed``, …)."""
        event = Event(
            study_id=study_id,
            trial_id=trial_id,
            kind=kind,
            message=message,
            data=data,
            created_at=_now(),
        )
        with self._session(write=True) as session:
            session.add(event)
            session.flush()
            return _record(EventRecord, event)

    def trial_events(self, study_id: int, trial_id: int, limit: int = 100) -> list[EventRecord]:
        """The trial's first `limit` events, oldest first (indexed by study and trial)."""
        stmt = (
            sa.select(Event)
            .where(Event.study_id == study_id, Event.trial_id == trial_id)
            .order_by(Event.id)
            .limit(limit)
        )
        with self._session() as session:
            return [_record(EventRecord, e) for e in session.scalars(stmt)]

    def list_events(
        self, study_id: int, *, after_id: int = 0, limit: int = 100, kind: str | None = None
    ) -> list[EventRecord]:
        """The study's events with id greater than `after_id`, oldest first (indexed),
        only those of `kind` if given."""
        stmt = sa.select(Event).where(Event.study_id == study_id, Event.id > after_id)
        if kind is not None:
            stmt = stmt.where(Event.kind == kind)
        stmt = stmt.order_by(Event.id).limit(limit)
        with self._session() as session:
            return [_record(EventRecord, e) for e in session.scalars(stmt)]
