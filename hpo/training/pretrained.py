"""Where `init_from` finds its weights: a file, or a trial of an earlier study.

`init_from` takes two forms, told apart by `parse_init_from` without touching the disk:

- ``STUDY/NUMBER`` (two positive integers, e.g. ``3/17``): trial 17 of study 3, whose
  stored weights every trial of the new study starts from;
- anything else is a path to a weights file: a plain ``state_dict`` (what
  ``torch.save(model.state_dict(), f)`` writes) or a dict with a ``state_dict`` key
  (and usually ``config``, as ``hpo best ID --weights FILE`` writes). A file whose path
  has the ``STUDY/NUMBER`` shape is named with a leading ``./`` (``./3/17``).

`resolve_init_from(reference, database_url)` is the one seam between the training core
and stored trial weights. A ``STUDY/NUMBER`` is looked up in the study's database (the
driver passes its own URL to every trial; ``hpo train`` its ``--db``): the trial's
delivered model, read from its last checkpoint in the artifact store exactly as
``hpo best --weights`` writes it (`hpo.weights.trial_weights`), is written once to a
local cache file whose path is returned. A trial that does not exist or saved no
checkpoint raises `WeightsNotAvailable` ("not available: ...", with the reason).

This module must not import torch (the config validator uses `parse_init_from`); the
storage it needs for ``STUDY/NUMBER`` is imported only when such a reference is resolved.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
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
        return _fetch_trial_weights(source, database_url)
    if not source.is_file():
        raise FileNotFoundError(f"no such weights file: {str(source)!r}")
    return source


def _fetch_trial_weights(source: TrialWeights, database_url: str | None) -> Path:
    """A local file of `source`'s delivered weights, fetched from its study's database and
    artifact store. Fetched afresh on every call (one small read per trial): a cache keyed
    by the reference could outlive a deleted study whose id a new one reuses."""
    from hpo.config import DEFAULT_DATABASE_URL

    url = database_url or os.environ.get("HPO_DATABASE_URL") or DEFAULT_DATABASE_URL
    missing = f"not available: no stored weights for trial {source}"
    if url.startswith("sqlite") and ":memory:" not in url:
        # Opening a SQLite URL creates its file: a missing database is named instead.
        file = Path(url.split(":///", 1)[-1].split("?", 1)[0])
        if not file.is_file():
            raise WeightsNotAvailable(f"{missing} (no database file {str(file)!r})")
    from hpo.storage.errors import NotFoundError, StorageError
    from hpo.storage.repository import Repository
    from hpo.weights import trial_weights

    try:
        repo = Repository(url, create=False)
    except StorageError as exc:
        raise WeightsNotAvailable(f"{missing} ({exc})") from None
    try:
        data = trial_weights(repo, source.study_id, source.number)
    except (NotFoundError, StorageError) as exc:
        raise WeightsNotAvailable(f"{missing} ({exc})") from None
    finally:
        repo.close()
    folder = Path(tempfile.gettempdir()) / "hpo-init-from"
    folder.mkdir(parents=True, exist_ok=True)
    # One file per process and reference, rewritten each time: never a stale one.
    key = hashlib.sha256(f"{url}|{source}".encode()).hexdigest()[:16]
    path = folder / f"{key}-{os.getpid()}.pt"
    path.write_bytes(data)
    return path
