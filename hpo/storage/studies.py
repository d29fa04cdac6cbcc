"""Studies, runner leases and API tokens: the lifecycle side of the repository."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hpo.storage.base import RepositoryBase, retrying_methods
from hpo.storage.errors import LeaseHeldError, LeaseLostError, NotFoundError
from hpo.storage.models import Study, Token
from hpo.storage.records import (
    FINISHED_STUDY_STATUSES,
    STUDY_STATUSES,
    ObjectiveMode,
    StudyRecord,
    StudyStatus,
    _check,
    _now,
    _record,
)

__all__ = ["StudiesMixin"]


@retrying_methods
class StudiesMixin(RepositoryBase):
    """Create, list and end studies; claim, renew and release their leases; API tokens."""

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
        lease_owner: str | None = None,
        lease_s: float = 30.0,
    ) -> StudyRecord:
        """Store a new study (queued by default, so that a runner may claim it).

        With `lease_owner` the study is created ``running``, already claimed by that
        driver (fencing token 1) for `lease_s` seconds: no runner can take it in between
        (``hpo run SPEC``)."""
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
            if lease_owner is not None:
                now = self._db_now(session)
                study.status = "running"
                study.started_at = now
                study.lease_owner = lease_owner
                study.lease_expires_at = now + timedelta(seconds=lease_s)
                study.heartbeat_at = now
                study.lease_token = 1
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
        self,
        study_id: int,
        status: StudyStatus,
        *,
        error: str | None = None,
        token: int | None = None,
    ) -> None:
        """Move a study to `status`: ``running`` stamps `started_at` (once); a finished
        status stamps `finished_at` and drops the runner lease; ``queued`` clears both.

        With `token` (a driver's), the change is made only while the study's lease is still
        that token's; otherwise `LeaseLostError`."""
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
        if token is not None:
            stmt = stmt.where(Study.lease_token == token)
        with self._session(write=True) as session:
            if session.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
                if token is not None and session.get(Study, study_id) is not None:
                    raise LeaseLostError(f"study {study_id}: lease token {token} is stale")
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

    # -- leases --------------------------------------------------------------------------
    #
    # Whoever drives a study (`hpo run` or a runner's driver) holds its lease. Lease times
    # come from the database's clock (`_db_now`), so hosts whose clocks disagree still
    # agree on who holds a study. Each claim increments `lease_token`, the fencing token
    # the driver's writes carry (`results.py`): once another driver has claimed the study,
    # a stale driver's writes are refused.

    @staticmethod
    def _claimable(now: datetime) -> sa.ColumnElement[bool]:
        """Queued, or running under no lease or an expired one (its driver is gone)."""
        return sa.or_(
            Study.status == "queued",
            sa.and_(
                Study.status == "running",
                sa.or_(Study.lease_expires_at.is_(None), Study.lease_expires_at < now),
            ),
        )

    @staticmethod
    def _claim_values(worker: str, lease_s: float, now: datetime) -> dict[str, Any]:
        return {
            "status": "running",
            "lease_owner": worker,
            "lease_expires_at": now + timedelta(seconds=lease_s),
            "lease_token": Study.lease_token + 1,
            "heartbeat_at": now,
            "started_at": sa.func.coalesce(Study.started_at, now),
            "finished_at": None,
        }

    def claim_study(self, study_id: int, worker: str, lease_s: float) -> bool:
        """Atomically take study `study_id` for `worker` for `lease_s` seconds.

        Succeeds (and sets the study running) only if it is queued or its lease expired;
        of several workers racing for one study exactly one gets True.
        """
        with self._session(write=True) as session:
            now = self._db_now(session)
            stmt = (
                sa.update(Study)
                .where(Study.id == study_id, self._claimable(now))
                .values(**self._claim_values(worker, lease_s, now))
            )
            return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    def acquire_lease(
        self, study_id: int, worker: str, lease_s: float, *, token: int | None = None
    ) -> StudyRecord:
        """Take the study for `worker` (as `claim_study`) and return it with its new
        fencing token; a ``failed`` or ``cancelled`` study is taken too (resumed).

        With `token`, adopt a lease `worker` already holds under that token (a runner's
        driver child) instead of claiming anew; a live lease of `worker` itself is adopted
        too (``hpo run SPEC`` created the study claimed). Raises `LeaseHeldError` (who, until when)
        while another live lease holds the study, `LeaseLostError` if the lease to adopt
        is gone, `NotFoundError` for a missing study, `ValueError` for a completed one.
        """
        with self._session(write=True) as session:
            now = self._db_now(session)
            study = session.get(Study, study_id, with_for_update=True)
            if study is None:
                raise NotFoundError(f"no study with id {study_id}")
            if study.status == "completed":
                raise ValueError(f"study {study_id} is already completed")
            live = (
                study.status == "running"
                and study.lease_expires_at is not None
                and study.lease_expires_at >= now
            )
            if token is None and live and study.lease_owner == worker:
                token = study.lease_token  # its own lease (a study it created claimed)
            if token is not None:
                if study.lease_owner != worker or study.lease_token != token or not live:
                    raise LeaseLostError(
                        f"study {study_id}: the lease of {worker} (token {token}) is gone"
                    )
                study.lease_expires_at = now + timedelta(seconds=lease_s)
                study.heartbeat_at = now
            else:
                if live:
                    raise LeaseHeldError(study_id, study.lease_owner, study.lease_expires_at)
                for name, value in self._claim_values(worker, lease_s, now).items():
                    if name == "lease_token":
                        value = study.lease_token + 1
                    elif name == "started_at":
                        value = study.started_at or now
                    setattr(study, name, value)
                study.error = None
            session.flush()
            return _record(StudyRecord, study)

    def claim_next_queued(self, worker: str, lease_s: float) -> StudyRecord | None:
        """Atomically take the oldest claimable study for `worker`; None if there is none.

        One ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: concurrent
        runners on PostgreSQL skip each other's candidate; on SQLite the write lock taken
        by ``BEGIN IMMEDIATE`` serialises them. Each study is handed out once per lease.
        """
        with self._session(write=True) as session:
            now = self._db_now(session)
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
            study = session.scalars(stmt).one_or_none()
            return None if study is None else _record(StudyRecord, study)

    def renew_lease(
        self, study_id: int, worker: str, lease_s: float, *, token: int | None = None
    ) -> bool:
        """Extend `worker`'s lease by `lease_s` from now (the database's clock); False if
        it no longer holds it (under `token`, when given)."""
        with self._session(write=True) as session:
            now = self._db_now(session)
            stmt = (
                sa.update(Study)
                .where(Study.id == study_id, Study.lease_owner == worker, Study.status == "running")
                .values(lease_expires_at=now + timedelta(seconds=lease_s), heartbeat_at=now)
            )
            if token is not None:
                stmt = stmt.where(Study.lease_token == token)
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
