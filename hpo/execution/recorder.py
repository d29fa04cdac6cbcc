"""The study's one writer of results: a Ray Tune callback that feeds a writer thread.

Ray calls the callback on its driver loop; the callback only enqueues. The writer thread
drains the queue and writes everything that has piled up in ONE transaction
(`Repository.write_batch`: trials started, results, retries, trials finished, in that
order), so under load writes batch themselves and persistence never stalls Ray's loop,
while a quiet study still writes each result at once.

Durability: a trial is marked finished only after all its results are written (they are
ahead of it in the queue), so a finished trial's metrics are never lost. A running trial's
latest results are at most one batch window (20 ms) plus one write behind when the
driver is killed.

Outages and fencing: every write carries the driver's lease token. A transient database
error is retried inside the repository for its window (``HPO_STORAGE_RETRY_S``); the
writer never drops a batch it has not written: while the database is away the queue
grows and Ray's trials keep running. Past the window the writer keeps its batch, reports
`unavailable`, and the driver stops the study (back to ``queued``). When the lease is lost
(`LeaseLostError`) the writer stops writing at once: nothing it holds may be stored.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import TrialScheduler

from hpo import artifacts
from hpo.execution.reports import EARLIER_KEY, epoch_of, unpack
from hpo.execution.schedulers import pruned_at, stop_reason
from hpo.execution.trainables import (
    CHECKPOINT_KEYS,
    PROVENANCE_KEYS,
    RESTORE_EPOCH_KEY,
    RESTORE_TRIAL_KEY,
)
from hpo.numbers import finite
from hpo.spec import StudySpec
from hpo.storage.errors import LeaseLostError, StorageUnavailableError
from hpo.storage.records import (
    BatchItem,
    KeyedResult,
    NewTrial,
    Perturbed,
    Restored,
    Retry,
    TrialEnd,
)
from hpo.storage.repository import Repository, TrialStatus

log = logging.getLogger(__name__)

# What Ray adds to every result; everything else a trial reported is a metric.
RAY_RESULT_KEYS = frozenset(
    {
        "checkpoint_dir_name",
        "config",
        "date",
        "done",
        "hostname",
        "iterations_since_restore",
        "node_ip",
        "pid",
        "time_since_restore",
        "time_this_iter_s",
        "time_total_s",
        "timestamp",
        "training_iteration",
        "trial_id",
        "experiment_tag",
        "should_checkpoint",
    }
)


@dataclass
class Progress:
    """What the CLI's live progress bar shows; updated on Ray's loop, read anywhere."""

    target: int
    counts: Counter[str] = field(default_factory=Counter)
    best: float | None = None
    mode: str = "min"

    def observe(self, value: float | None) -> None:
        if value is None:
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = value


_STOP = object()
BATCH_WINDOW_S = 0.02
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


class ResultWriter:
    """Owns the repository writes of one study on its own thread (see module docstring).

    `token` is the driver's lease token, carried by every write.
    """

    def __init__(self, repo: Repository, study_id: int, *, token: int | None = None) -> None:
        self._repo = repo
        self._study_id = study_id
        self._token = token
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._trial_ids: dict[str, int] = {}
        # Per trial key, the checkpoint files the database records (last, best): once a
        # newer one is recorded, the one it supersedes is deleted from the store.
        self._files: dict[str, tuple[str | None, str | None]] = {}
        self._error: BaseException | None = None
        self._abandon = threading.Event()
        # Set once the database stayed away past the retry window, or the lease was lost.
        self.unavailable: StorageUnavailableError | None = None
        self.lease_lost: LeaseLostError | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"hpo-writer-{study_id}", daemon=True
        )
        self._thread.start()

    @property
    def failed(self) -> bool:
        """Whether the driver must stop: the writer cannot store what Ray reports."""
        return self._error is not None or self.unavailable is not None

    def put(self, item: object) -> None:
        if self._error is not None:
            raise RuntimeError("the result writer failed; see the log") from self._error
        self._queue.put(item)

    def close(self, *, abandon: bool = False) -> None:
        """Write everything queued, then stop. Raises what the writer thread failed with.

        With `abandon` (the database is gone past its window, or the lease is lost), stop
        after the write in progress: what is left is never stored by this driver."""
        if abandon:
            self._abandon.set()
        self._queue.put(_STOP)
        # An abandoning writer may sit in a retry of the unreachable database: a daemon
        # thread, left behind after a short wait.
        self._thread.join(5.0 if abandon else None)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            # Let a burst of results pile up into one transaction; a quiet study still
            # writes each result within this window.
            time.sleep(BATCH_WINDOW_S)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stop = True
                batch = [item for item in batch if item is not _STOP]
            if not self._write_keeping(batch):
                return

    def _write_keeping(self, batch: list[object]) -> bool:
        """Write `batch`, trying again past each retry window until it is written or the
        driver abandons it; False when the writer must stop."""
        while True:
            if self.lease_lost is not None or self._abandon.is_set():
                return False
            try:
                self._write(batch)
                self.unavailable = None
                return True
            except LeaseLostError as exc:
                log.error("study %s: lease lost, writing stops: %s", self._study_id, exc)
                self.lease_lost = exc
                return False
            except StorageUnavailableError as exc:
                # Keep the batch: the driver stops the study; the batch is written if the
                # database comes back before it gives up.
                log.error("study %s: database unavailable: %s", self._study_id, exc)
                self.unavailable = exc
            except BaseException as exc:  # keep the driver informed, never die silently
                log.exception("writing results of study %s failed", self._study_id)
                self._error = exc
                return False

    def _write(self, batch: list[object]) -> None:
        # One transaction for the whole pass (trials started, results, retries, ends): a
        # batch is stored entirely or not at all, so writing it again after an outage
        # stores nothing twice.
        items = [item for item in batch if isinstance(item, BatchItem)]
        if items:
            created = self._repo.write_batch(
                self._study_id, items, self._trial_ids, token=self._token
            )
            self._trial_ids.update(created)
            self._prune_checkpoints(items)

    def _prune_checkpoints(self, items: list[BatchItem]) -> None:
        """Delete the checkpoint files the batch just superseded in the database (a trial
        keeps its last and its best). Ray keeps its own copies for retries and PBT."""
        for item in items:
            if isinstance(item, Restored):
                # A PBT trial restarted with a resumed trial's config names that trial:
                # only the first Restored of a key is the trial's own.
                self._files.setdefault(item.key, (item.last_location, item.best_location))
            elif isinstance(item, KeyedResult) and item.checkpoint:
                location = str(item.checkpoint["location"])
                last, best = self._files.get(item.key, (None, None))
                new_best = location if item.checkpoint.get("best") else best
                for old in {last, best} - {location, new_best, None}:
                    try:
                        artifacts.delete(str(old))
                    except OSError as exc:  # a stale file costs space, never the study
                        log.warning("cannot delete checkpoint %s: %s", old, exc)
                self._files[item.key] = (location, new_best)


class StudyRecorder(Callback):
    """Ray Tune callback: every trial start, result and end of one study, to the writer."""

    def __init__(
        self,
        spec: StudySpec,
        writer: ResultWriter,
        scheduler: TrialScheduler,
        progress: Progress,
        *,
        run_id: str,
        deadline: float | None = None,
        on_step: Callable[[], None] | None = None,
        static_provenance: dict[str, Any] | None = None,
        ray_keeps_checkpoints: bool = False,
        restored: dict[int, tuple[str | None, str | None]] | None = None,
    ) -> None:
        self._spec = spec
        # Trials resumed from an earlier driver's run: their recorded (last, best) files.
        self._restored_files = restored or {}
        self._metric = spec.objective.metric
        self._writer = writer
        self._scheduler = scheduler
        self._progress = progress
        self._run_id = run_id
        self._deadline = deadline
        self._on_step = on_step
        self._static = static_provenance or {}
        self._epochs: dict[str, int] = {}
        # The epoch of the last checkpoint each trial handed Ray: a retry restarts there.
        self._ray_checkpoint: dict[str, int] = {}
        self._ray_keeps_checkpoints = ray_keeps_checkpoints

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config for `Tuner.restore`, which hpo never uses (the
        # database is the record); the writer thread and the hooks cannot travel.
        state = self.__dict__.copy()
        state.update(_writer=None, _on_step=None)
        return state

    def key(self, trial: Any) -> str:
        # Ray's trial ids are unique within one Tuner run only; a resumed study is a new run.
        return self._key_of(trial.trial_id)

    def _key_of(self, trial_id: str) -> str:
        return f"{self._run_id}:{trial_id}"

    def _drain_perturbations(self) -> None:
        """Queue a ``perturbed`` event for each exploit PBT made since the last call."""
        made: list[dict[str, Any]] | None = getattr(self._scheduler, "perturbations", None)
        while made:
            p = made.pop(0)
            self._writer.put(
                Perturbed(
                    self._key_of(p["trial"]),
                    self._key_of(p["source"]),
                    p["epoch"],
                    p["from"],
                    p["to"],
                )
            )

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        config = dict(trial.config)
        if RESTORE_TRIAL_KEY in config:
            trial_id = int(config[RESTORE_TRIAL_KEY])
            last, best = self._restored_files.get(trial_id, (None, None))
            epoch = int(config[RESTORE_EPOCH_KEY])
            self._writer.put(Restored(self.key(trial), trial_id, epoch, last, best))
        else:
            self._writer.put(
                NewTrial(self.key(trial), config, config.get("seed"), dict(self._static))
            )
        self._progress.counts["running"] += 1

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        # A FIFO trial's result may carry earlier epochs (`hpo.execution.reports`).
        for epoch in unpack(result):
            self._record_result(trial, epoch)

    def _record_result(self, trial: Any, result: Mapping[str, Any]) -> None:
        step = epoch_of(result)
        metrics: dict[str, float] = {}
        provenance: dict[str, Any] = {}
        for name, value in result.items():
            if name in PROVENANCE_KEYS:
                provenance[name.removeprefix("hpo_")] = value
            elif name in CHECKPOINT_KEYS or name == EARLIER_KEY:
                continue
            elif name not in RAY_RESULT_KEYS and name != "epoch":
                number = finite(value)
                if number is not None or isinstance(value, float):
                    metrics[name] = number if number is not None else float("nan")
        if provenance:
            provenance["node_ip"] = result.get("node_ip")
        objective = finite(result.get(self._metric))
        self._epochs[trial.trial_id] = step
        self._progress.observe(objective)
        checkpoint = None
        if result.get("hpo_checkpoint_location"):
            checkpoint = {
                "location": result["hpo_checkpoint_location"],
                "epoch": int(result["hpo_checkpoint_epoch"]),
                "bytes": int(result["hpo_checkpoint_bytes"]),
                "best": bool(result["hpo_checkpoint_best"]),
            }
            if self._ray_keeps_checkpoints:
                self._ray_checkpoint[trial.trial_id] = checkpoint["epoch"]
        self._writer.put(
            KeyedResult(self.key(trial), step, metrics, objective, provenance, checkpoint)
        )

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        epochs = self._epochs.pop(trial.trial_id, 0)
        status: TrialStatus = "completed"
        error: str | None = None
        if pruned_at(self._scheduler, trial.trial_id, self._spec.budget.max_epochs) is not None:
            status = "pruned"
            error = stop_reason(self._scheduler, trial.trial_id)
        elif (
            self._deadline is not None
            and time.monotonic() >= self._deadline
            and epochs < self._spec.budget.max_epochs
        ):
            status, error = "pruned", "stopped by the study's time limit"
        self._finish(trial, status, error, epochs)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        # Ray retries the trial (max_failures): the same trial, a new attempt.
        self._epochs.pop(trial.trial_id, None)
        attempts = self._spec.budget.max_failures + 1
        # Ray restarts it from the last checkpoint it was handed (kept across retries).
        from_epoch = self._ray_checkpoint.get(trial.trial_id)
        self._writer.put(Retry(self.key(trial), _error_text(trial), attempts, from_epoch))
        self._progress.counts["running"] -= 1  # on_trial_start counts it again

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finish(trial, "failed", _error_text(trial), self._epochs.pop(trial.trial_id, 0))

    def _finish(self, trial: Any, status: TrialStatus, error: str | None, epochs: int) -> None:
        key = self.key(trial)
        message = f"trial {key} {status} after {epochs} epochs"
        self._writer.put(TrialEnd(key, status, error, message))
        self._progress.counts["running"] -= 1
        self._progress.counts[status] += 1

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._drain_perturbations()
        if self._on_step is not None:
            self._on_step()


def _error_text(trial: Any) -> str:
    """The trial's error: the exception line first, then the end of Ray's trace."""
    # Ray writes the trace to the driver's staging copy first; `get_error()` reads the
    # synced copy, which may not exist yet when this callback runs.
    text = None
    try:
        path = trial.error_file
        if path and os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        else:
            text = trial.get_error()
    except Exception:  # Ray's error files may be gone; never lose the failure itself
        text = None
    if not text:
        return "the trial failed (Ray recorded no error)"
    text = _ANSI.sub("", str(text)).strip()
    lines = [line for line in text.splitlines() if _EXCEPTION_LINE.match(line)]
    headline = lines[-1] if lines else text.splitlines()[-1]
    return f"{headline}\n\n{text[-4000:]}"
