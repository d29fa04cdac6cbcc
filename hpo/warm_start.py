"""Warm starts from an earlier study (``strategy.warm_start.from_study``).

The one check that needs the database: the earlier study must exist (and, over the
service, be visible to the submitter), optimize the same metric in the same direction,
and search the same parameters with the same kinds (a range here and a range there, or
listed values in both). Ranges may differ: its trials outside this space are skipped by
the sampler (`Sampler.fits`). `from_study_errors` is called when a study is submitted
(service, ``hpo submit``), when ``hpo run`` creates it, and again by the driver before
the first ask, which then `learn_from_study` s: every finished trial (completed, and
pruned with its objective history) is observed by the sampler, so a model-based sampler
fits once on all of them before proposing anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpo.errors import FieldError, SpecError
from hpo.samplers.base import Sampler, TrialState
from hpo.spec import StudySpec, load_spec
from hpo.storage.errors import NotFoundError
from hpo.storage.repository import Repository, StudyRecord

FIELD = "strategy.warm_start.from_study"


def earlier_study(repo: Repository, spec: StudySpec) -> StudyRecord | None:
    """The study `spec` warm-starts from, None if it names none; `SpecError` on the
    field if there is no such study."""
    warm = spec.strategy.warm_start
    if warm is None or warm.from_study is None:
        return None
    try:
        return repo.get_study(warm.from_study)
    except NotFoundError:
        raise SpecError([FieldError(FIELD, f"no study with id {warm.from_study}")]) from None


def compatibility_errors(spec: StudySpec, earlier: StudyRecord) -> list[FieldError]:
    """Why `earlier`'s trials cannot teach a sampler of `spec`'s space (empty: they can)."""
    try:
        old = load_spec(earlier.spec)
    except SpecError as exc:
        return [FieldError(FIELD, f"study {earlier.id} has an invalid spec: {exc}")]
    errors: list[FieldError] = []
    # Every objective, in order: a multi-objective sampler learns the whole vector.
    ours = [(o.metric, o.mode) for o in spec.objectives]
    theirs = [(o.metric, o.mode) for o in old.objectives]
    if ours != theirs:
        errors.append(
            FieldError(
                FIELD,
                f"study {earlier.id} optimizes {_named(theirs)}, this one {_named(ours)}",
            )
        )
    for name in sorted(old.space.keys() - spec.space.keys()):
        errors.append(
            FieldError(FIELD, f"study {earlier.id} searches {name!r}, which this space lacks")
        )
    for name, param in spec.space.items():
        before = old.space.get(name)
        if before is None:
            errors.append(
                FieldError(f"space.{name}", f"not searched by study {earlier.id} ({FIELD})")
            )
        elif before.is_categorical != param.is_categorical or (
            not param.is_categorical and (before.kind == "int") != (param.kind == "int")
        ):
            errors.append(
                FieldError(
                    f"space.{name}",
                    f"a {param.kind} here but a {before.kind} in study {earlier.id} ({FIELD})",
                )
            )
    return errors


def _named(objectives: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{metric} ({mode})" for metric, mode in objectives)


def from_study_errors(repo: Repository, spec: StudySpec) -> list[FieldError]:
    """Every reason `spec`'s ``from_study`` cannot be used (empty when it names none)."""
    try:
        earlier = earlier_study(repo, spec)
    except SpecError as exc:
        return list(exc.errors)
    return [] if earlier is None else compatibility_errors(spec, earlier)


def learn_from_study(sampler: Sampler, repo: Repository, spec: StudySpec) -> int:
    """Observe the earlier study's finished trials into `sampler`; return how many.

    Raises `SpecError` when the earlier study is missing or incompatible."""
    earlier = earlier_study(repo, spec)
    if earlier is None:
        return 0
    errors = compatibility_errors(spec, earlier)
    if errors:
        raise SpecError(errors)
    finished = [t for t in repo.iter_trials(earlier.id) if t.status in ("completed", "pruned")]
    histories = repo.metric_series([t.id for t in finished], spec.objective.metric)
    for trial in finished:
        state: TrialState = "pruned" if trial.status == "pruned" else "completed"
        params = {name: trial.config[name] for name in spec.space if name in trial.config}
        values = (
            list(trial.objective_values or [None] * len(spec.objectives))
            if spec.multi_objective
            else [trial.objective_value]
        )
        sampler.observe_values(params, values, state=state, history=histories.get(trial.id, []))
    return len(finished)
