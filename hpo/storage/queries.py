"""The read queries: trials, metrics and events, paged and indexed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from hpo.pareto import pareto_indices
from hpo.storage.base import RepositoryBase
from hpo.storage.errors import NotFoundError
from hpo.storage.models import Event, Metric, Study, Trial
from hpo.storage.records import (
    PARAM_SORT_PREFIX,
    TRIAL_COLUMN_SORTS,
    TRIAL_STATUSES,
    EventRecord,
    MetricRecord,
    TrialRecord,
    TrialStatus,
    _record,
)

__all__ = ["QueriesMixin"]


class QueriesMixin(RepositoryBase):
    """Reads for the CLI, the API and the dashboard (one query each, paged)."""

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

        `sort` is ``number`` (default), ``objective_value`` (the trial's one value),
        ``best_value``, ``last_value``, ``epochs_run``,
        ``started_at``, ``param:NAME`` (a hyperparameter of the config: numbers by value,
        strings alphabetically; not indexed, so a sort over the study's trials) or a
        metric name (ordered by the metric's value at the trial's last step). Missing
        values sort last. Without `descending`, the objective (``objective_value``, ``best_value``,
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
                        last.attempt == Trial.attempt,
                        last.step == Trial.epochs_run,
                        last.name == sort,
                    ),
                )
                key = last.value
            if descending is None:
                descending = False
                metric = sort not in TRIAL_COLUMN_SORTS and not sort.startswith(PARAM_SORT_PREFIX)
                if sort in ("best_value", "last_value", "objective_value") or metric:
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
        """The study's best trial (kept by `finish_trial`), one query: by `objective_value`
        among trials that ran their full budget, pruned ones only when none did, failed
        ones never, ties to the earlier trial."""
        stmt = (
            sa.select(Trial)
            .join(Study, Study.best_trial_id == Trial.id)
            .where(Study.id == study_id)
        )
        with self._session() as session:
            trial = session.scalars(stmt).one_or_none()
            return None if trial is None else _record(TrialRecord, trial)

    def pareto_trials(self, study_id: int) -> list[TrialRecord]:
        """The study's Pareto set: its completed trials with a finite value of every
        objective that no other such trial dominates (`hpo.pareto`), by number. For a
        single-objective study, the trials sharing the best value. Two queries: every
        candidate's values, then the records of the set."""
        with self._session() as session:
            spec = session.execute(
                sa.select(Study.spec["objective"]).where(Study.id == study_id)
            ).one_or_none()
            if spec is None:
                raise NotFoundError(f"no study with id {study_id}")
            objectives = spec[0] if isinstance(spec[0], list) else [spec[0] or {}]
            modes = [o.get("mode", "min") for o in objectives]
            rows = session.execute(
                sa.select(Trial.id, Trial.objective_values).where(
                    Trial.study_id == study_id,
                    Trial.status == "completed",
                    Trial.objective_values.is_not(None),
                )
            ).all()
            candidates: list[tuple[int, list[float]]] = []
            for tid, values in rows:
                numbers = [float(v) for v in values or [] if isinstance(v, int | float)]
                if len(numbers) == len(modes) == len(values or []):
                    candidates.append((tid, numbers))
            chosen = pareto_indices([values for _, values in candidates], modes)
            ids = [candidates[i][0] for i in chosen]
            if not ids:
                return []
            trials = session.scalars(
                sa.select(Trial).where(Trial.id.in_(ids)).order_by(Trial.number)
            )
            return [_record(TrialRecord, t) for t in trials]

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
        """(number, status, objective_value) of every trial by number, streamed.

        Three narrow columns and no JSON: what a summary over all of a big study's trials
        (best-so-far, a sample to draw) needs, at a fraction of `iter_trials`' cost.
        """
        stmt = (
            sa.select(Trial.number, Trial.status, Trial.objective_value)
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
        """(number, status, objective_value, config) of the trials with these numbers, by
        number, in one query: a quarter of `trials_by_numbers`' cost for plots of many."""
        if not numbers:
            return []
        stmt = (
            sa.select(Trial.number, Trial.status, Trial.objective_value, Trial.config)
            .where(Trial.study_id == study_id, Trial.number.in_(list(numbers)))
            .order_by(Trial.number)
        )
        with self._session() as session:
            return [(int(n), str(s), v, dict(c)) for n, s, v, c in session.execute(stmt)]

    # -- metrics -------------------------------------------------------------------------

    def trial_metrics(self, trial_id: int, *, all_attempts: bool = False) -> list[MetricRecord]:
        """A trial's history: its last attempt's, ordered by step then name; with
        `all_attempts`, every attempt's rows, by attempt, step and name."""
        stmt = sa.select(Metric).where(Metric.trial_id == trial_id)
        if not all_attempts:
            current = sa.select(Trial.attempt).where(Trial.id == trial_id).scalar_subquery()
            stmt = stmt.where(Metric.attempt == current)
        stmt = stmt.order_by(Metric.attempt, Metric.step, Metric.name)
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
        """One metric's (step, value) history of each trial's last attempt, in one query."""
        series: dict[int, list[tuple[int, float | None]]] = {t: [] for t in trial_ids}
        if not trial_ids:
            return series
        stmt = (
            sa.select(Metric.trial_id, Metric.step, Metric.value)
            .join(Trial, sa.and_(Trial.id == Metric.trial_id, Trial.attempt == Metric.attempt))
            .where(Metric.trial_id.in_(list(trial_ids)), Metric.name == name)
            .order_by(Metric.trial_id, Metric.step)
        )
        with self._session() as session:
            for trial_id, step, value in session.execute(stmt):
                series[trial_id].append((step, value))
        return series

    def iter_study_metrics(self, study_id: int, batch: int = 5000) -> Iterator[MetricRecord]:
        """Every metric of the study's trials' last attempts, by trial, step and name,
        streamed (for export).

        The read transaction stays open until the iterator is exhausted or closed.
        """
        stmt = (
            sa.select(Metric.trial_id, Metric.step, Metric.name, Metric.value, Metric.attempt)
            .join(Trial, sa.and_(Trial.id == Metric.trial_id, Trial.attempt == Metric.attempt))
            .where(Trial.study_id == study_id)
            .order_by(Metric.trial_id, Metric.step, Metric.name)
            .execution_options(yield_per=batch)
        )
        with self._session() as session:
            for row in session.execute(stmt):
                yield MetricRecord(*row)

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
