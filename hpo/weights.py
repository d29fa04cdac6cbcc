"""A trial's delivered model, taken home: its ``state_dict`` with the config that built it.

The file (`trial_weights`) is one ``torch.save`` of ``{"state_dict", "config", "study",
"trial", "epoch"}``: `state_dict` is the model the trial delivers (the best epoch's with
``objective.value: best``, else its last epoch's), read from the trial's last checkpoint
in the artifact store; `config` is the flat config the training core built it from, so
``build_model(config, input_shape, num_outputs).load_state_dict(state_dict)`` restores it
(`hpo.training.models.build_model`). Shared by ``hpo best --weights`` and
``GET /api/v1/studies/{id}/trials/{n}/weights``.
"""

from __future__ import annotations

import io
from typing import Any

from hpo import artifacts
from hpo.storage.errors import NotFoundError
from hpo.storage.repository import Repository


def trial_weights(repo: Repository, study_id: int, number: int) -> bytes:
    """The weights file of trial `number` of study `study_id` (see the module doc).

    Raises `NotFoundError` when the trial does not exist, saved no checkpoint (a user
    function, ``checkpoint_every: 0``, or a study run before checkpoints), or its file
    is gone from the artifact store."""
    import torch

    from hpo.training.checkpoint import delivered_weights, from_bytes

    trial = repo.get_trial(study_id, number)
    checkpoint = trial.last_checkpoint
    if not checkpoint:
        raise NotFoundError(f"trial {number} of study {study_id} saved no checkpoint")
    try:
        data = artifacts.read(str(checkpoint["location"]))
    except FileNotFoundError:
        raise NotFoundError(
            f"the checkpoint of trial {number} of study {study_id} is gone from the "
            f"artifact store ({checkpoint['location']})"
        ) from None
    state = from_bytes(data)
    document: dict[str, Any] = {
        "state_dict": delivered_weights(state),
        "config": state["config"],
        "study": study_id,
        "trial": number,
        "epoch": int(state["epoch"]),
    }
    buffer = io.BytesIO()
    torch.save(document, buffer)
    return buffer.getvalue()
