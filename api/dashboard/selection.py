"""The trials a user picked on the study page (by dragging on the parallel coordinates'
axes), as the trials table shows them.

* ``GET /studies/{id}/selection?numbers=3,8,12`` — those trials (missing numbers skipped)
  as one `TrialsPublic` page, by number. The browser sorts and pages them itself: there
  are at most `MAX_SELECTION`, the trials a plot draws, so the server reads that many rows
  whatever the study's size.

`parse_numbers` is shared with ``/curves?numbers=…``: a list of trial numbers in a query
string is checked once, here, and refused with the field and the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, RepoDep
from api.models import TrialPublic, TrialsPublic, error_responses
from api.routes.studies import MAX_ID, StudyId
from hpo import service
from hpo.errors import FieldError, SpecError

router = APIRouter(
    prefix="/studies/{study_id}",
    tags=["dashboard"],
    responses=error_responses(401, 404, 422, 503),
)

# The parallel coordinates draw 500 trials: a selection is a subset of them. (A GET's
# query stays under 16 KB, the request-line limit of common servers and proxies.)
MAX_SELECTION = 1000
NUMBERS_DOC = "Trial numbers separated by commas, e.g. 3,8,12."


def parse_numbers(raw: str, field: str, limit: int) -> list[int]:
    """Distinct trial numbers, in the order given, from ``"3,8,12"``; a SpecError naming
    `field` for anything else (not a number, out of range, more than `limit`)."""
    parts = [part.strip() for part in raw.split(",")]
    if not raw.strip() or any(not part for part in parts):
        raise SpecError([FieldError(field, "must list trial numbers separated by commas")])
    bad = next((p for p in parts if not p.isdigit() or not 1 <= int(p) <= MAX_ID), None)
    if bad is not None:
        message = f"'{bad[:20]}' is not a trial number (a whole number from 1 to {MAX_ID})"
        raise SpecError([FieldError(field, message)])
    numbers = list(dict.fromkeys(int(p) for p in parts))
    if len(numbers) > limit:
        message = f"lists {len(numbers)} trials; at most {limit} at once"
        raise SpecError([FieldError(field, message)])
    return numbers


@router.get("/selection")
async def selection(
    study_id: StudyId,
    repo: RepoDep,
    user: CurrentUser,
    numbers: Annotated[str, Query(max_length=MAX_SELECTION * 11, description=NUMBERS_DOC)],
) -> TrialsPublic:
    """The trials with these numbers, by number (see the module docstring)."""
    study = service.get_visible_study(repo, study_id, user)
    wanted = parse_numbers(numbers, "query.numbers", MAX_SELECTION)
    rows = await run_in_threadpool(repo.trials_by_numbers, study.id, wanted)
    return TrialsPublic(data=[TrialPublic.of(t) for t in rows], count=len(rows))
