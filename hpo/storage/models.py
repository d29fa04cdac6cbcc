"""SQLAlchemy declarative models: the schema of studies, trials, metrics and events.

The models describe the tables for queries; the tables themselves are created only by the
Alembic migrations (`migrations/versions/`), which must be kept in step with this file
(a test compares the migrated schema with this metadata).

Conventions:

* Timestamps are stored as UTC and always come back timezone-aware (`UTCDateTime`).
* Non-finite floats (NaN, ±inf) are stored as NULL: SQLite cannot keep NaN, and an
  "unknown" objective must never sort or compare as a real value.
* JSON columns hold plain JSON documents (JSONB on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "Event", "Metric", "Study", "Token", "Trial", "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware.

    SQLite has no time zones: values are stored naive (in UTC) so that string comparison
    in SQL (lease expiry) orders them correctly; PostgreSQL uses ``timestamptz``.
    Naive datetimes handed in are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base; `Base.metadata` is the migrations' target metadata."""


class Study(Base):
    """One search: its spec, lifecycle, best result so far and the runner lease."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    status: Mapped[str] = mapped_column(String(16))
    objective_metric: Mapped[str] = mapped_column(String(255))
    # Copied out of the spec so that "best first" can be ordered in SQL.
    objective_mode: Mapped[str] = mapped_column(String(3))
    n_trials_target: Mapped[int | None] = mapped_column(Integer)
    # The last trial number handed out: incremented in the transaction that creates the
    # trial, so numbering is gap-free and safe under concurrent writers.
    last_trial_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    best_trial_id: Mapped[int | None] = mapped_column(
        ForeignKey("trials.id", ondelete="SET NULL", use_alter=True, name="fk_studies_best_trial")
    )
    best_value: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The fencing token: incremented by every claim of the lease, carried by each of the
    # driver's writes, which are refused once another claim has moved it on (0004).
    lease_token: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by whoever cancels a running study; its driver polls it and stops the trials.
    # A flag rather than a status, so the driver (the study's one writer) stays the one
    # to close the trials and end the study.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        Index("ix_studies_status_id", "status", "id"),
        Index("ix_studies_owner_id", "owner", "id"),
    )


class Trial(Base):
    """One configuration tried within a study, with its running summary of results."""

    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    ray_trial_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    seed: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    epochs_run: Mapped[int] = mapped_column(Integer, default=0)
    last_value: Mapped[float | None] = mapped_column(Float)
    best_value: Mapped[float | None] = mapped_column(Float)
    # The trial's one objective value (0004): its last attempt's last epoch for
    # `objective.value: last`, its best epoch for `best`. What ranks trials.
    objective_value: Mapped[float | None] = mapped_column(Float)
    # Its value of each objective, in the spec's order (0006): `[objective_value]` for one
    # objective; a multi-objective study's Pareto set is read from these.
    objective_values: Mapped[list[float | None] | None] = mapped_column(JSONDoc)
    # Ray retries a failing trial (`max_failures`) as attempts 2, 3, … of the same trial:
    # the summary columns describe the current attempt only (0004).
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The study lease's fencing token the trial runs under (NULL: written without one).
    lease_token: Mapped[int | None] = mapped_column(Integer)
    final_metrics: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    error: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    # Its latest checkpoint and the one of its best epoch so far (0005):
    # {"location", "epoch", "bytes"}, files in the artifact store.
    last_checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    best_checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)

    __table_args__ = (
        UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
        UniqueConstraint("study_id", "ray_trial_id", name="uq_trials_study_ray_trial_id"),
        Index("ix_trials_study_status", "study_id", "status"),
        Index("ix_trials_study_best_value", "study_id", "best_value"),
        Index("ix_trials_study_objective_value", "study_id", "objective_value"),
    )


class Metric(Base):
    """One reported value: (trial, attempt, step, name) is unique, so a re-sent step never
    duplicates and a retried trial's attempts never mix."""

    __tablename__ = "metrics"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    # NULL stands for a non-finite value (NaN or ±inf), see the module docstring.
    value: Mapped[float | None] = mapped_column(Float)


class Event(Base):
    """A study-level log line (study started, trial started/finished/pruned/failed, resumed)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_events_study_id", "study_id", "id"),
        # One trial's events (migration 0003).
        Index("ix_events_study_trial", "study_id", "trial_id", "id"),
    )


class Token(Base):
    """An API token of one user: only its SHA-256 is stored, never the token itself."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
