"""Errors a user can cause, each naming the field path and the reason.

Every bad input reaches the user as one `SpecError` listing *all* problems found, so a
spec is fixed in one edit rather than one error per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem: `path` is dotted (``space.lr.loguniform``), `message` says why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ValueError):
    """A spec, a search space or a hyperparameter value was refused.

    `errors` holds every problem found; `str()` lists them one per line.
    """

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = list(dict.fromkeys(errors))
        super().__init__("\n".join(str(e) for e in self.errors))

    def as_dicts(self) -> list[dict[str, str]]:
        """The errors as JSON-ready objects (``{"field": …, "message": …}``)."""
        return [{"field": e.path, "message": e.message} for e in self.errors]


def path_of(loc: Iterable[object]) -> str:
    """Turn a pydantic ``loc`` tuple into a dotted path, dropping pydantic's internal tags."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    return ".".join(parts)
