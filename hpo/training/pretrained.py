"""Where `init_from` finds its weights: a file, or a trial of an earlier study.

`init_from` takes two forms, told apart by `parse_init_from` without touching the disk:

- ``STUDY/NUMBER`` (two positive integers, e.g. ``3/17``): trial 17 of study 3, whose
  stored weights every trial of the new study starts from;
- anything else is a path to a weights file: a plain ``state_dict`` (what
  ``torch.save(model.state_dict(), f)`` writes) or a dict with a ``state_dict`` key
  (and usually ``config``, as ``hpo best ID --weights FILE`` writes). A file whose path
  has the ``STUDY/NUMBER`` shape is named with a leading ``./`` (``./3/17``).

`resolve_init_from(reference, database_url)` is the one seam between the training core
and stored trial weights. Trial checkpoints and best weights live in the artifact store
(built on another branch); until it is wired in here, the ``STUDY/NUMBER`` branch raises
`WeightsNotAvailable` ("not available: no stored weights for trial STUDY/NUMBER"). Wiring
it means replacing that one branch with a lookup of the trial's best-weights artifact,
returning its local path.

This module must not import torch (the config validator uses `parse_init_from`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_TRIAL_REF = re.compile(r"^\s*(\d+)/(\d+)\s*$")


class WeightsNotAvailable(LookupError):
    """`init_from` names a trial whose weights cannot be had (none stored, or no store)."""


@dataclass(frozen=True)
class TrialWeights:
    """``STUDY/NUMBER``: the stored weights of trial `number` of study `study_id`."""

    study_id: int
    number: int

    def __str__(self) -> str:
        return f"{self.study_id}/{self.number}"


def parse_init_from(text: str) -> TrialWeights | Path:
    """A `TrialWeights` for ``STUDY/NUMBER``, else the `Path` of a weights file.

    `ValueError` for an empty value, or a ``STUDY/NUMBER`` with a zero id or number
    (both start at 1). Whether the file exists is checked by the caller.

        >>> parse_init_from("3/17")
        TrialWeights(study_id=3, number=17)
        >>> parse_init_from("./3/17")
        PosixPath('3/17')
    """
    if not text.strip():
        raise ValueError("must name a weights file or a trial as STUDY/NUMBER, e.g. 3/17")
    match = _TRIAL_REF.match(text)
    if match is None:
        return Path(text).expanduser()
    study_id, number = int(match.group(1)), int(match.group(2))
    if min(study_id, number) < 1:
        raise ValueError(f"{text.strip()!r}: study id and trial number start at 1")
    return TrialWeights(study_id, number)


def resolve_init_from(reference: str, database_url: str | None = None) -> Path:
    """The local path of the weights `reference` names (see the module doc).

    `database_url` locates the study of a ``STUDY/NUMBER`` reference (None: the
    configured ``HPO_DATABASE_URL``). Raises `FileNotFoundError` for a missing file and
    `WeightsNotAvailable` for a trial whose weights are not stored.
    """
    source = parse_init_from(reference)
    if isinstance(source, TrialWeights):
        # The seam: trial weights come from the artifact store once it lands.
        raise WeightsNotAvailable(f"not available: no stored weights for trial {source}")
    if not source.is_file():
        raise FileNotFoundError(f"no such weights file: {str(source)!r}")
    return source
