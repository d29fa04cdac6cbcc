"""The results write path the driver uses: trials, attempts, metrics, summaries, events.

Each method is one transaction; `record_results` takes a whole batch in a few statements.

Fencing: the driver passes its lease's `token` to every write. The write first checks,
in its own transaction, that the study's `lease_token` is still that token (the study
row is locked by the check on PostgreSQL, and SQLite's ``BEGIN IMMEDIATE`` serialises
writers), else raises `LeaseLostError` and writes nothing. Writes for a trial that is no
longer ``running`` under that token (closed already, or started by another driver) are
refused: skipped, and counted in the return value where there is one. Without a token
(tests, tools) nothing is fenced or refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hpo.numbers import finite
from hpo.storage.base import retrying_methods
from hpo.storage.checkpoints import CheckpointsMixin
from hpo.storage.errors import LeaseLostError, NotFoundError
from hpo.storage.models import Event, Metric, Study, Trial
from hpo.storage.records import (
    BEST_ELIGIBLE_STATUSES,
    TRIAL_STATUSES,
    BatchItem,
    EventRecord,
    KeyedResult,
    NewTrial,
    Perturbed,
    Restored,
    ResultRow,
    Retry,
    TrialEnd,
    TrialRecord,
    TrialStatus,
    _check,
    _now,
    _record,
)

__all__ = ["ResultsMixin"]

# Rows per multi-VALUES INSERT: 5 parameters a row stays under SQLite's 32,766 limit.
_INSERT_CHUNK = 5000


def _fence(session: Session, study_id: int, token: int | None) -> None:
    """Raise `LeaseLostError` unless the study's lease is still `token`'s (see module)."""
    if token is None:
        return
    current = session.execute(
        sa.select(Study.lease_token).where(Study.id == study_id).with_for_update()
    ).scalar_one_or_none()
    if current is None:
        raise NotFoundError(f"no study with id {study_id}")
    if current != token:
        raise LeaseLostError(
            f"study {study_id}: lease token {token} was superseded by {current}; "
            "another driver runs the study"
        )


def _fenced_study_of(session: Session, trial_id: int, token: int | None) -> int:
    """The study of trial `trial_id`, after `_fence` has checked its lease is `token`'s."""
    study_id = session.execute(
        sa.select(Trial.study_id).where(Trial.id == trial_id)
    ).scalar_one_or_none()
    if study_id is None:
        raise NotFoundError(f"no trial with id {trial_id}")
    _fence(session, study_id, token)
    return int(study_id)


def _running_under(token: int | None) -> sa.ColumnElement[bool]:
    """Trials a driver holding `token` may still write to (any trial without a token)."""
    if token is None:
        return sa.true()
    return sa.and_(Trial.status == "running", Trial.lease_token == token)


@retrying_methods
class ResultsMixin(CheckpointsMixin):
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
        token: int | None = None,
    ) -> TrialRecord:
        """Store a running trial with the study's next number (1, 2, …, without gaps).

        The number comes from incrementing ``studies.last_trial_number`` in the same
        transaction, which locks the study row: concurrent writers never share a number.
        Idempotent on `ray_trial_id`: a call re-sent after a lost commit acknowledgement
        returns the trial the first one stored.
        """
        with self._session(write=True) as session:
            _fence(session, study_id, token)
            return self._create_trial_in(
                session, study_id, config, seed, ray_trial_id, provenance, token
            )

    @staticmethod
    def _create_trial_in(
        session: Session,
        study_id: int,
        config: dict[str, Any],
        seed: int | None,
        ray_trial_id: str | None,
        provenance: dict[str, Any],
        token: int | None,
    ) -> TrialRecord:
        if ray_trial_id is not None:
            existing = session.scalars(
                sa.select(Trial).where(
                    Trial.study_id == study_id, Trial.ray_trial_id == ray_trial_id
                )
            ).one_or_none()
            if existing is not None:
                return _record(TrialRecord, existing)
        number = session.execute(
            sa.update(Study)
            .where(Study.id == study_id)
            .values(last_trial_number=Study.last_trial_number + 1)
            .returning(Study.last_trial_number)
        ).scalar_one_or_none()
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
            attempt=1,
            lease_token=token,
        )
        session.add(trial)
        session.flush()
        return _record(TrialRecord, trial)

    def start_attempt(self, trial_id: int, *, error: str, of: int, token: int | None = None) -> int:
        """Start the next attempt of a running trial that Ray retries after `error`; its
        summary starts afresh (the earlier attempts' metric rows stay, under their own
        attempt number). Logs "attempt N of `of` after: <error>". Returns N, or 0 if the
        trial is no longer running under `token` (refused)."""
        with self._session(write=True) as session:
            study_id = _fenced_study_of(session, trial_id, token)
            return self._start_attempt_in(session, study_id, trial_id, error, of, token)

    @staticmethod
    def _start_attempt_in(
        session: Session, study_id: int, trial_id: int, error: str, of: int, token: int | None
    ) -> int:
        headline = error.strip().splitlines()[0] if error.strip() else "an error"
        attempt = session.execute(
            sa.update(Trial)
            .where(Trial.id == trial_id, _running_under(token))
            .values(
                attempt=Trial.attempt + 1,
                epochs_run=0,
                last_value=None,
                best_value=None,
                objective_value=None,
                objective_values=None,
                final_metrics={},
            )
            .returning(Trial.attempt)
        ).scalar_one_or_none()
        if attempt is None:
            return 0
        session.add(
            Event(
                study_id=study_id,
                trial_id=trial_id,
                kind="trial_retried",
                message=f"attempt {attempt} of {of} after: {headline}",
                data={"attempt": attempt, "of": of, "error": error[-2000:]},
                created_at=_now(),
            )
        )
        return int(attempt)

    def add_provenance(
        self, trial_id: int, provenance: Mapping[str, Any], *, token: int | None = None
    ) -> None:
        """Merge `provenance` into the trial's (keys given here win): some facts, such as
        the device and host a trial runs on, are only known once it reports."""
        with self._session(write=True) as session:
            trial = session.get(Trial, trial_id, with_for_update=True)
            if trial is None:
                raise NotFoundError(f"no trial with id {trial_id}")
            _fence(session, trial.study_id, token)
            trial.provenance = {**trial.provenance, **provenance}

    def record_results(self, results: Sequence[ResultRow], *, token: int | None = None) -> int:
        """Store a batch of reports in one transaction; returns how many were refused.

        Reports go to the trial's current attempt. Metric rows are upserted on (trial,
        attempt, step, name), so a re-sent step never duplicates (the latest value wins).
        Each trial's summary is updated: `epochs_run` = highest step, `last_value` and
        `final_metrics` from that step, `best_value` the best finite objective seen (by
        the study's mode), `objective_value` one of those two (``objective.value`` of the
        spec). Reports for a trial not running under `token` are refused (see module).
        """
        if not results:
            return 0
        trial_ids = sorted({r.trial_id for r in results})
        with self._session(write=True) as session:
            if token is not None:
                study_ids = session.execute(
                    sa.select(Trial.study_id).where(Trial.id.in_(trial_ids)).distinct()
                ).scalars()
                for study_id in sorted(study_ids):
                    _fence(session, study_id, token)
            return self._record_results_in(session, results, token)

    def _record_results_in(
        self, session: Session, results: Sequence[ResultRow], token: int | None
    ) -> int:
        trial_ids = sorted({r.trial_id for r in results})
        summaries = (
            sa.select(
                Trial.id,
                Trial.study_id,
                Trial.attempt,
                Trial.epochs_run,
                Trial.last_value,
                Trial.best_value,
                Trial.final_metrics,
                Study.objective_mode,
                Study.spec["objective"].label("objective_spec"),
            )
            .join(Study, Study.id == Trial.study_id)
            .where(Trial.id.in_(trial_ids), _running_under(token))
            .with_for_update(of=Trial)
        )
        current = {row.id: row for row in session.execute(summaries)}
        missing = set(trial_ids) - current.keys()
        if token is None and missing:
            raise NotFoundError(f"no trials with ids {sorted(missing)}")
        kept = [r for r in results if r.trial_id in current]
        rows = [
            {
                "trial_id": r.trial_id,
                "attempt": current[r.trial_id].attempt,
                "step": r.step,
                "name": name,
                "value": finite(value),
            }
            for r in kept
            for name, value in r.metrics.items()
        ]
        for start in range(0, len(rows), _INSERT_CHUNK):
            session.execute(self._upsert_metrics(rows[start : start + _INSERT_CHUNK]))
        by_trial: dict[int, list[ResultRow]] = {tid: [] for tid in current}
        for result in kept:
            by_trial[result.trial_id].append(result)
        updates = [self._summarise(current[tid], reports) for tid, reports in by_trial.items()]
        if updates:
            session.execute(sa.update(Trial), updates)
        return len(results) - len(kept)

    def _upsert_metrics(self, rows: list[dict[str, Any]]) -> sa.Executable:
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(Metric).values(rows)
        return stmt.on_conflict_do_update(
            index_elements=[Metric.trial_id, Metric.attempt, Metric.step, Metric.name],
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
            objective = finite(report.objective)
            if report.step >= epochs_run:
                epochs_run = report.step
                last_value = objective
                final_metrics = {k: finite(v) for k, v in report.metrics.items()}
            if objective is not None:
                best = objective if best is None else better(best, objective)
        # The spec's objective: a mapping, or a list of them (multi-objective, where each
        # value is the last epoch's, the one model the trial delivers).
        spec = current.objective_spec
        objectives = spec if isinstance(spec, list) else [spec if isinstance(spec, dict) else {}]
        value = best if objectives[0].get("value", "last") == "best" else last_value
        values = (
            [value]
            if len(objectives) == 1
            else [finite(final_metrics.get(str(o.get("metric")))) for o in objectives]
        )
        return {
            "id": current.id,
            "epochs_run": epochs_run,
            "last_value": last_value,
            "best_value": best,
            "objective_value": value,
            "objective_values": values,
            "final_metrics": final_metrics,
        }

    def finish_trial(
        self,
        trial_id: int,
        status: TrialStatus,
        *,
        error: str | None = None,
        token: int | None = None,
    ) -> bool:
        """Close a running trial with `status` and recompute its study's best trial and
        value. False (nothing written) if the trial is no longer running (under `token`)."""
        _check(status, TRIAL_STATUSES, "trial status")
        with self._session(write=True) as session:
            study_id = _fenced_study_of(session, trial_id, token)
            closed = self._finish_in(session, trial_id, status, error, token)
            if closed:
                self._update_study_best(session, study_id)
            return closed

    @staticmethod
    def _finish_in(
        session: Session, trial_id: int, status: str, error: str | None, token: int | None
    ) -> bool:
        closed = session.execute(
            sa.update(Trial)
            .where(Trial.id == trial_id, _running_under(token))
            .values(status=status, error=error, finished_at=_now())
        ).rowcount  # type: ignore[attr-defined]
        return bool(closed)

    def write_batch(
        self,
        study_id: int,
        items: Sequence[BatchItem],
        trial_ids: Mapping[str, int],
        *,
        token: int | None = None,
    ) -> dict[str, int]:
        """Everything a driver's writer collected, in ONE transaction (one fence check):
        new trials (`NewTrial`, with their ``trial_started`` event), restored ones
        (`Restored`: an earlier driver's running trial, re-owned), reports (`KeyedResult`,
        with provenance to merge and the checkpoint saved with it), retries (`Retry`: a new
        attempt takes only the reports after it, plus the earlier attempt's up to the
        checkpoint it restarts from) and ends (`TrialEnd`, with their event), in that
        order, plus one update of the study's best. Items name trials by their driver
        key (``ray_trial_id``); `trial_ids` maps the keys already stored. Returns the
        keys of the trials created or restored here. Every part keeps the rules of its
        one-at-a-time method (idempotent trial creation, upserted metrics, writes refused
        for trials not running under `token`).
        """
        created: dict[str, int] = {}
        with self._session(write=True) as session:
            _fence(session, study_id, token)
            for item in items:
                if isinstance(item, NewTrial) and item.key not in trial_ids:
                    trial = self._create_trial_in(
                        session, study_id, item.config, item.seed, item.key, item.provenance, token
                    )
                    created[item.key] = trial.id
                    session.add(
                        Event(
                            study_id=study_id,
                            trial_id=trial.id,
                            kind="trial_started",
                            message=f"trial {trial.number} started",
                            created_at=_now(),
                        )
                    )
                elif (
                    isinstance(item, Restored)
                    and item.key not in trial_ids
                    and self._restore_in(
                        session, study_id, item.trial_id, item.key, item.epoch, token
                    )
                ):
                    created[item.key] = item.trial_id
            ids = {**trial_ids, **created}
            rows: list[ResultRow] = []
            provenance: dict[int, dict[str, Any]] = {}
            checkpoints: list[tuple[int, Any]] = []
            for item in items:
                if isinstance(item, KeyedResult) and item.key in ids:
                    tid = ids[item.key]
                    rows.append(ResultRow(tid, item.step, item.metrics, item.objective))
                    if item.provenance:
                        provenance.setdefault(tid, {}).update(item.provenance)
                    if item.checkpoint:
                        checkpoints.append((tid, item.checkpoint))
                elif isinstance(item, Retry) and item.key in ids:
                    if rows:
                        self._record_results_in(session, rows, token)
                        rows = []
                    tid = ids[item.key]
                    attempt = self._start_attempt_in(
                        session, study_id, tid, item.error, item.of, token
                    )
                    if attempt and item.from_epoch:
                        self._carry_over_in(session, tid, item.from_epoch, token)
            if rows:
                self._record_results_in(session, rows, token)
            for tid, checkpoint in checkpoints:
                self._record_checkpoint_in(session, tid, checkpoint)
            for item in items:
                if isinstance(item, Perturbed) and item.key in ids:
                    self._perturbed_in(session, study_id, item, ids)
            for tid, facts in provenance.items():
                row = session.get(Trial, tid, with_for_update=True)
                if row is not None:
                    row.provenance = {**row.provenance, **facts}
            closed = False
            for item in items:
                if isinstance(item, TrialEnd) and item.key in ids:
                    tid = ids[item.key]
                    if self._finish_in(session, tid, item.status, item.error, token):
                        closed = True
                        session.add(
                            Event(
                                study_id=study_id,
                                trial_id=tid,
                                kind=f"trial_{item.status}",
                                message=item.message,
                                created_at=_now(),
                            )
                        )
            if closed:
                self._update_study_best(session, study_id)
        return created

    def close_running_trials(
        self,
        study_id: int,
        status: TrialStatus = "failed",
        error: str | None = "the driver running this trial exited",
        *,
        done_at_step: int | None = None,
        keep: Sequence[int] = (),
        token: int | None = None,
    ) -> int:
        """Close every trial of the study still ``running`` (but those in `keep`: trials a
        resuming driver continues from their checkpoints) (its driver is gone, the study
        was cancelled or ran out of time); returns how many were closed.

        A trial that already reported step `done_at_step` (the budget's last epoch) had
        finished its training, only its completion was not recorded yet: it is closed as
        ``completed``, not as `status`. Used on resume too: nothing stays running without
        a driver.
        """
        _check(status, TRIAL_STATUSES, "trial status")
        running = sa.update(Trial).where(Trial.study_id == study_id, Trial.status == "running")
        if keep:
            running = running.where(Trial.id.not_in(list(keep)))
        now = _now()
        with self._session(write=True) as session:
            _fence(session, study_id, token)
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
        """Best first: trials that ran their budget (``completed``: every epoch, or stopped
        early by the training core itself) before ``pruned`` ones, then by the objective
        value, ties to the earlier trial."""
        value = Trial.objective_value.asc() if mode == "min" else Trial.objective_value.desc()
        full_budget = sa.case((Trial.status == "completed", 0), else_=1)
        return [full_budget, value, Trial.number.asc()]

    def _update_study_best(self, session: Session, study_id: int) -> None:
        mode = session.execute(
            sa.select(Study.objective_mode).where(Study.id == study_id)
        ).scalar_one()
        best = session.execute(
            sa.select(Trial.id, Trial.objective_value)
            .where(
                Trial.study_id == study_id,
                Trial.status.in_(BEST_ELIGIBLE_STATUSES),
                Trial.objective_value.is_not(None),
            )
            .order_by(*self._best_order(mode))
            .limit(1)
        ).one_or_none()
        session.execute(
            sa.update(Study)
            .where(Study.id == study_id)
            .values(
                best_trial_id=None if best is None else best.id,
                best_value=None if best is None else best.objective_value,
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
        token: int | None = None,
    ) -> EventRecord:
        """Append a line to the study's log (kinds: ``started``, ``trial_started``,
        ``trial_finished``, ``trial_pruned``, ``trial_failed``, ``trial_retried``,
        ``resumed``, …)."""
        event = Event(
            study_id=study_id,
            trial_id=trial_id,
            kind=kind,
            message=message,
            data=data,
            created_at=_now(),
        )
        with self._session(write=True) as session:
            _fence(session, study_id, token)
            session.add(event)
            session.flush()
            return _record(EventRecord, event)
