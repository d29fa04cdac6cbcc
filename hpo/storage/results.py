"""The results write path the driver uses: trials, metrics, summaries, events.

Each method is one transaction; `record_results` takes a whole batch in three statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hpo.storage.base import RepositoryBase
from hpo.storage.errors import NotFoundError
from hpo.storage.models import Event, Metric, Study, Trial
from hpo.storage.records import (
    BEST_ELIGIBLE_STATUSES,
    TRIAL_STATUSES,
    EventRecord,
    ResultRow,
    TrialRecord,
    TrialStatus,
    _check,
    _finite,
    _now,
    _record,
)

__all__ = ["ResultsMixin"]

# Rows per multi-VALUES INSERT: 4 parameters a row stays under SQLite's 32,766 limit.
_INSERT_CHUNK = 5000


class ResultsMixin(RepositoryBase):
    """Writes of the study's driver: trials, their reports and the study's best."""

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
