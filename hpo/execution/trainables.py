"""What a Ray trial runs: the built-in training core, or a user function.

Both report once per epoch through `tune.report`. The first report of a trial also
carries where it ran (Ray node id, hostname, device), which the driver stores as the
trial's provenance.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

from hpo import references
from hpo.spec import StudySpec

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


def make_trainable(spec: StudySpec) -> Callable[[dict[str, Any]], None]:
    """The Ray function trainable for `spec` (a closure Ray pickles to its workers)."""
    function = spec.trainable.function
    threads = max(1, int(spec.resources.cpu))
    # With `objective.value: best` the delivered model is the best epoch's: the core keeps
    # those weights, so what the trial hands over has the value it is ranked by.
    objective = spec.objective
    keep_best = (objective.metric, objective.mode) if objective.value == "best" else None

    def hpo_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

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

        def report(metrics: Mapping[str, Any]) -> None:
            result = dict(metrics)
            if provenance:
                result.update(provenance)
                provenance.clear()
            tune.report(result)

        if function is not None:
            load_function(function)(dict(config), report)
        else:
            from hpo.training.loop import train

            train(config, report, keep_best=keep_best)

    return hpo_trial
