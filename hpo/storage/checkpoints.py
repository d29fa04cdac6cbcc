"""Trial checkpoints in the database: where each trial's latest and best states are.

The files live in the artifact store (`hpo.artifacts`); the database records, per trial,
``last_checkpoint`` and ``best_checkpoint`` as ``{"location", "epoch", "bytes"}``. They are
written by the driver's writer in the same transaction as the report they came with, so
a recorded checkpoint's epoch always has its metrics stored.

Restores: a driver that resumes a study re-owns the trials an earlier driver left
``running`` with a checkpoint (`_restore_in`: same trial, same number, same attempt; a
``restored`` event with the epoch). A retry from a checkpoint (`_carry_over_in`) copies the
failed attempt's reports up to the checkpoint's epoch into the new attempt, so the new
attempt's history is whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hpo.storage.base import RepositoryBase, retrying_methods
from hpo.storage.models import Event, Metric, Study, Trial
from hpo.storage.records import Perturbed, ResultRow, TrialRecord, _now, _record

__all__ = ["CheckpointsMixin"]


@retrying_methods
class CheckpointsMixin(RepositoryBase):
    """Checkpoint records of trials (see the module doc)."""

    def resumable_trials(self, study_id: int) -> list[TrialRecord]:
        """Trials left ``running`` by a driver that is gone and that saved a checkpoint:
        a resuming driver continues them from it (oldest first)."""
        stmt = (
            sa.select(Trial)
            .where(
                Trial.study_id == study_id,
                Trial.status == "running",
                Trial.last_checkpoint.is_not(None),
            )
            .order_by(Trial.number)
        )
        with self._session() as session:
            return [_record(TrialRecord, t) for t in session.scalars(stmt)]

    def checkpoint_locations(self, study_id: int) -> list[str]:
        """Every checkpoint file the study's trials record (to delete with the study)."""
        stmt = sa.select(Trial.last_checkpoint, Trial.best_checkpoint).where(
            Trial.study_id == study_id
        )
        found: set[str] = set()
        with self._session() as session:
            for last, best in session.execute(stmt):
                for doc in (last, best):
                    if doc and doc.get("location"):
                        found.add(str(doc["location"]))
        return sorted(found)

    def checkpoint_bytes(self, study_id: int) -> int:
        """Bytes the study's recorded checkpoints hold (a file recorded as both last and
        best counts once)."""
        stmt = sa.select(Trial.last_checkpoint, Trial.best_checkpoint).where(
            Trial.study_id == study_id
        )
        sizes: dict[str, int] = {}
        with self._session() as session:
            for last, best in session.execute(stmt):
                for doc in (last, best):
                    if doc and doc.get("location"):
                        sizes[str(doc["location"])] = int(doc.get("bytes") or 0)
        return sum(sizes.values())

    # -- inside the writer's transaction (`ResultsMixin.write_batch`) --------------------

    @staticmethod
    def _restore_in(
        session: Session, study_id: int, trial_id: int, key: str, epoch: int, token: int | None
    ) -> bool:
        """Re-own running trial `trial_id` for the driver holding `token`, as driver key
        `key`, and log its ``restored`` event; False if it is no longer running."""
        owned = session.execute(
            sa.update(Trial)
            .where(Trial.id == trial_id, Trial.study_id == study_id, Trial.status == "running")
            .values(ray_trial_id=key, lease_token=token)
            .returning(Trial.number)
        ).scalar_one_or_none()
        if owned is None:
            return False
        session.add(
            Event(
                study_id=study_id,
                trial_id=trial_id,
                kind="restored",
                message=f"trial {owned} restored from its checkpoint of epoch {epoch}",
                data={"epoch": epoch},
                created_at=_now(),
            )
        )
        return True

    @staticmethod
    def _record_checkpoint_in(
        session: Session, trial_id: int, checkpoint: Mapping[str, Any]
    ) -> None:
        doc = {k: checkpoint[k] for k in ("location", "epoch", "bytes")}
        values: dict[str, Any] = {"last_checkpoint": doc}
        if checkpoint.get("best"):
            values["best_checkpoint"] = doc
        session.execute(sa.update(Trial).where(Trial.id == trial_id).values(**values))

    def _carry_over_in(
        self, session: Session, trial_id: int, up_to: int, token: int | None
    ) -> None:
        """Copy the previous attempt's reports of steps ≤ `up_to` into the trial's new
        (current) attempt, through the normal result path (summary included)."""
        row = session.execute(
            sa.select(Trial.attempt, Study.objective_metric)
            .join(Study, Study.id == Trial.study_id)
            .where(Trial.id == trial_id)
        ).one()
        stmt = sa.select(Metric.step, Metric.name, Metric.value).where(
            Metric.trial_id == trial_id,
            Metric.attempt == row.attempt - 1,
            Metric.step <= up_to,
        )
        by_step: dict[int, dict[str, float]] = {}
        for step, name, value in session.execute(stmt):
            by_step.setdefault(step, {})[name] = float("nan") if value is None else value
        reports = [
            ResultRow(trial_id, step, metrics, metrics.get(row.objective_metric))
            for step, metrics in sorted(by_step.items())
        ]
        if reports:
            self._record_results_in(session, reports, token)  # type: ignore[attr-defined]

    @staticmethod
    def _perturbed_in(
        session: Session, study_id: int, item: Perturbed, ids: Mapping[str, int]
    ) -> None:
        """Log a ``perturbed`` event: which trial's state it copied, what changed."""
        wanted = [ids[k] for k in (item.key, item.source_key) if k in ids]
        stmt = sa.select(Trial.id, Trial.number).where(Trial.id.in_(wanted))
        numbers = {int(row.id): int(row.number) for row in session.execute(stmt)}
        number = numbers.get(ids[item.key])
        source = numbers.get(ids.get(item.source_key, -1))
        changes = ", ".join(
            f"{name} {item.before.get(name)!r} → {value!r}" for name, value in item.after.items()
        )
        session.add(
            Event(
                study_id=study_id,
                trial_id=ids[item.key],
                kind="perturbed",
                message=f"trial {number} copied trial {source}'s state of epoch {item.epoch}; "
                f"{changes or 'no change'}",
                data={
                    "source_trial": source,
                    "epoch": item.epoch,
                    "from": dict(item.before),
                    "to": dict(item.after),
                },
                created_at=_now(),
            )
        )
