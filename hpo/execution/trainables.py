"""What a Ray trial runs: the built-in training core, or a user function.

Both report once per epoch through `tune.report`. The first report of a trial also
carries where it ran (Ray node id, hostname, device), which the driver stores as the
trial's provenance.

Checkpoints (built-in core only; a user function keeps no state, and is retried or
resumed from epoch 0 as before): every ``budget.checkpoint_every`` epochs the core's
whole state goes to the artifact store as ``<root>/study-<id>/<run>/<trial>/epoch-<n>.pt``
and the report that follows names it (`CHECKPOINT_KEYS`), so the driver records it in
the database with that epoch's metrics. When Ray itself must restore trials (retries
with ``max_failures``, population-based training) the same bytes also go to Ray as a
`ray.tune.Checkpoint`, which Ray hands back through `tune.get_checkpoint()`.

A trial starts from, first that exists: Ray's checkpoint (a retry, or PBT's exploit of
a better trial), the artifact named by `RESTORE_KEY` in its config (a trial resumed after
its driver died), else epoch 0.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo import artifacts, references
from hpo.execution.reports import REPORT_INTERVAL_S, ReportBuffer
from hpo.spec import StudySpec

if TYPE_CHECKING:  # torch is imported in the trial, not by the driver's import of this
    from hpo.training.checkpoint import Every

Report = Callable[[Mapping[str, Any]], None]
UserFunction = Callable[[dict[str, Any], Report], Any]

# Keys the trainable adds to its first result; the driver moves them into provenance.
PROVENANCE_KEYS = (
    "hpo_node_id",
    "hpo_hostname",
    "hpo_device",
    # Reported by the training core with its first result (issue 8): the study-level
    # data seed that drew the split, and a short hash of the validation rows.
    "hpo_data_seed",
    "hpo_split_hash",
)


# The report keys naming the checkpoint saved with it; the driver stores them as the
# trial's checkpoint record, never as metrics.
CHECKPOINT_KEYS = (
    "hpo_checkpoint_location",
    "hpo_checkpoint_epoch",
    "hpo_checkpoint_bytes",
    "hpo_checkpoint_best",
)
# Config keys of a trial resumed after its driver died (never part of its stored config):
# the checkpoint to start from, its epoch, and the trial's id in the database.
RESTORE_KEY = "hpo_restore_location"
RESTORE_EPOCH_KEY = "hpo_restore_epoch"
RESTORE_TRIAL_KEY = "hpo_restore_trial"
RESTORE_KEYS = (RESTORE_KEY, RESTORE_EPOCH_KEY, RESTORE_TRIAL_KEY)
STATE_FILE = "state.pt"


class TrialCheckpoints:
    """The core's `Checkpointer` inside a Ray trial (see the module doc).

    `save` writes the state to the artifact store and keeps what the next report must
    carry; `take` hands that over once (the report's keys, and Ray's checkpoint folder
    when Ray needs one).
    """

    def __init__(
        self, every: Every, folder: str, *, for_ray: bool, restore_from: str | None
    ) -> None:
        self.every = every
        self._folder = folder
        self._for_ray = for_ray
        self._restore_from = restore_from
        self._pending: tuple[dict[str, Any], bytes] | None = None

    def load(self) -> dict[str, Any] | None:
        from ray import tune

        from hpo.training.checkpoint import from_bytes

        given = tune.get_checkpoint()
        if given is not None:
            with given.as_directory() as folder:
                return from_bytes(Path(folder, STATE_FILE).read_bytes())
        if self._restore_from:
            return from_bytes(artifacts.read(self._restore_from))
        return None

    def save(self, state: dict[str, Any], *, epoch: int, best: bool) -> None:
        from hpo.training.checkpoint import to_bytes

        data = to_bytes(state)
        location = artifacts.join(self._folder, f"epoch-{epoch}.pt")
        size = artifacts.write(location, data)
        keys = dict(zip(CHECKPOINT_KEYS, (location, epoch, size, best), strict=True))
        self._pending = (keys, data)

    def take(self) -> tuple[dict[str, Any], bytes | None]:
        """(report keys, bytes for Ray's checkpoint or None); empty when nothing was saved."""
        if self._pending is None:
            return {}, None
        keys, data = self._pending
        self._pending = None
        return keys, data if self._for_ray else None


def ray_checkpoints_needed(spec: StudySpec) -> bool:
    """Whether Ray must hold trial checkpoints too: it restores retried trials itself,
    and PBT's exploit copies one trial's checkpoint into another."""
    return spec.budget.max_failures > 0 or spec.strategy.scheduler == "pbt"


def load_function(path: str) -> Callable[..., Any]:
    """Import `package.module:function` through `hpo.references` (its strict grammar);
    errors say which part was wrong or not found."""
    return references.load(path)


def _device(config: Mapping[str, Any]) -> str | None:
    """The device the built-in core will use; None for a user function that has not
    loaded torch (importing it only to ask would cost every trial a second or more)."""
    if "torch" not in sys.modules:
        return None
    import torch

    wanted = str(config.get("device", "auto"))
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def make_trainable(
    spec: StudySpec, *, folder: str | None = None, database_url: str | None = None
) -> Callable[[dict[str, Any]], None]:
    """The Ray function trainable for `spec` (a closure Ray pickles to its workers).

    `folder` is where this run's trials keep their checkpoints in the artifact store
    (each in a sub-folder named after its Ray trial id); None keeps none. `database_url`
    is the study's database, where an ``init_from: STUDY/NUMBER`` is looked up."""
    function = spec.trainable.function
    every: Every = spec.budget.checkpoint_every if folder is not None else 0
    if every == "auto" and spec.strategy.scheduler == "pbt":
        every = 1  # an exploit copies the latest state: it must be the last epoch's
    for_ray = ray_checkpoints_needed(spec)
    threads = max(1, int(spec.resources.cpu))
    # With `objective.value: best` the delivered model is the best epoch's: the core keeps
    # those weights, so what the trial hands over has the value it is ranked by.
    objective = spec.objective
    keep_best = (objective.metric, objective.mode) if objective.value == "best" else None
    # Only FIFO decides nothing at an epoch, so only there may epochs reach Tune in
    # batches (`hpo.execution.reports`); every other scheduler hears each one at once.
    interval = REPORT_INTERVAL_S if spec.strategy.scheduler == "fifo" else 0.0

    def hpo_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        config = dict(config)
        restore_from = config.pop(RESTORE_KEY, None)
        for key in RESTORE_KEYS:
            config.pop(key, None)
        saver = None
        if function is None and every != 0 and folder is not None:
            trial_id = tune.get_context().get_trial_id() or "trial"
            saver = TrialCheckpoints(
                every,
                artifacts.join(folder, trial_id),
                for_ray=for_ray,
                restore_from=restore_from,
            )

        if function is None:
            import torch

            # One intra-op thread per CPU the trial asked for: more would oversubscribe
            # the cores that concurrent trials share.
            torch.set_num_threads(threads)
        provenance: dict[str, Any] = {
            "hpo_node_id": ray.get_runtime_context().get_node_id(),
            "hpo_hostname": socket.gethostname(),
            "hpo_device": _device(config),
        }

        def send(result: dict[str, Any], data: bytes | None) -> None:
            if data is None:
                tune.report(result)
                return
            # Ray copies the folder into its own storage during `report`.
            with tempfile.TemporaryDirectory(prefix="hpo-ckpt-") as tmp:
                Path(tmp, STATE_FILE).write_bytes(data)
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))

        buffer = ReportBuffer(send, interval)

        def report(metrics: Mapping[str, Any]) -> None:
            result = dict(metrics)
            if provenance:
                result.update(provenance)
                provenance.clear()
            keys, data = saver.take() if saver is not None else ({}, None)
            result.update(keys)
            buffer.add(result, data, now=bool(keys))

        try:
            if function is not None:
                load_function(function)(config, report)
            else:
                from hpo.training.loop import train

                train(
                    config,
                    report,
                    keep_best=keep_best,
                    checkpoint=saver,
                    database_url=database_url,
                )
        except Exception:
            # The epochs reported before a failure are kept, as they were one by one; the
            # failure itself is what Ray must see, not an error of this last send. (Ray
            # ends a trial it stops with SystemExit inside `tune.report`: nothing is
            # queued then, and nothing more may be sent.)
            with contextlib.suppress(Exception):
                buffer.flush()
            raise
        buffer.flush(last=True)

    return hpo_trial
