"""What a user may do with studies and tokens: the rules the REST API and the CLI share.

The API is a thin layer over these functions (and the repository's read methods); the
rules live here, without FastAPI or Ray, so they are tested once and hold for every caller.

Ownership: a study records the identity of the user who submitted it (`User.identity`: the
token, never its display name; studies recorded by name before identities existed are
visible to admins only). With authentication on, a user sees, cancels and deletes only
their own studies and an admin all of them; a study a user may
not see is reported exactly as a missing one (`NotFoundError`), so ids leak nothing.
With authentication off (no token stored and no ``HPO_API_TOKEN``) the caller is `None`
and sees everything.

Tokens: `create_token` returns a random token once and stores only its SHA-256. A plain
(unsalted, fast) hash is enough because the tokens are 256-bit random strings, not
passwords: there is nothing to guess. ``HPO_API_TOKEN`` is a token from the environment
that authenticates as the admin user ``admin``, for a first deployment without a database
token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import sys
import sysconfig
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hpo import artifacts, references
from hpo.config import get_settings
from hpo.errors import FieldError, SpecError
from hpo.spec import StudySpec
from hpo.storage.repository import NotFoundError, Repository, StudyRecord

__all__ = [
    "Conflict",
    "LimitExceeded",
    "Limits",
    "PermissionDenied",
    "User",
    "auth_enabled",
    "authenticate",
    "can_see",
    "cancel_study",
    "check_references",
    "code_references",
    "create_token",
    "delete_study",
    "get_visible_study",
    "hash_token",
    "is_loopback",
    "public_error",
    "submit_study",
    "submit_within_limits",
    "token_identity",
]

ENV_ADMIN = "admin"
# The owner identity of studies submitted with HPO_API_TOKEN.
ENV_IDENTITY = "env:HPO_API_TOKEN"


@dataclass(frozen=True)
class User:
    """An authenticated caller: `name` is for display (event messages), `admin` sees all,
    and `identity` is who owns the studies they submit.

    `authenticate` always sets `id`: ``token:<hash prefix>`` for a database token,
    ``env:HPO_API_TOKEN`` for the environment's token, so a token merely *named* like
    another user (``admin``) is still someone else. A `User` built without `id` (a script,
    a test) is identified by its name.
    """

    name: str
    admin: bool
    id: str | None = None

    @property
    def identity(self) -> str:
        return self.id if self.id is not None else self.name


class PermissionDenied(Exception):
    """A user acting on a study that is not theirs."""


class LimitExceeded(Exception):
    """A user is at one of their limits (`Limits`); `retry_after_s` says when to try
    again (their studies finish, or they cancel one)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Limits:
    """What one user may have queued or running at once; 0 means no limit."""

    active_studies: int = 0
    concurrent_trials: int = 0
    retry_after_s: int = 60


class Conflict(Exception):
    """The request does not fit the study's state (delete while running, cancel a
    finished study)."""


def submit_study(repo: Repository, spec: StudySpec, *, owner: str | None) -> StudyRecord:
    """Store a validated spec as a ``queued`` study owned by `owner`; a runner claims it.

    A ``strategy.warm_start.from_study`` is checked here, where the database is at hand:
    `SpecError` naming the field when the earlier study is missing, not `owner`'s (with
    an owner: reported as missing, as elsewhere), or incompatible (`hpo.warm_start`)."""
    warm = spec.strategy.warm_start
    if warm is not None and warm.from_study is not None:
        from hpo.warm_start import FIELD, compatibility_errors

        missing = FieldError(FIELD, f"no study with id {warm.from_study}")
        try:
            earlier = repo.get_study(warm.from_study)
        except NotFoundError:
            raise SpecError([missing]) from None
        if owner is not None and earlier.owner != owner:
            raise SpecError([missing])
        errors = compatibility_errors(spec, earlier)
        if errors:
            raise SpecError(errors)
    return repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric=spec.objective.metric,
        objective_mode=spec.objective.mode,
        n_trials_target=spec.budget.trials,
        owner=owner,
        status="queued",
    )


# Counting a user's studies and storing a new one are two statements: one lock keeps two
# submits of the same process from both passing the count (several API processes could
# still each pass it once; the limits are a fairness bound, not an exact quota).
_submit_lock = threading.Lock()


def submit_within_limits(
    repo: Repository, spec: StudySpec, *, owner: str | None, limits: Limits
) -> StudyRecord:
    """`submit_study`, unless `owner` is at a limit: `LimitExceeded` if they already have
    `limits.active_studies` studies queued or running, or if this study's
    `budget.concurrency` would take their running trials past `limits.concurrent_trials`;
    a `SpecError` on ``budget.concurrency`` if this study alone asks for more than that."""
    trials_cap = limits.concurrent_trials
    if trials_cap and spec.budget.concurrency > trials_cap:
        raise SpecError(
            [
                FieldError(
                    "budget.concurrency",
                    f"more than the {trials_cap} concurrent trials a user may run",
                )
            ]
        )
    with _submit_lock:
        if limits.active_studies or trials_cap:
            active = _active_studies(repo, owner, limits.active_studies)
            if limits.active_studies and len(active) >= limits.active_studies:
                raise LimitExceeded(
                    f"{len(active)} studies queued or running: at most "
                    f"{limits.active_studies} at once; wait for one to finish or cancel one",
                    limits.retry_after_s,
                )
            running = sum(int(s.spec.get("budget", {}).get("concurrency", 1)) for s in active)
            if trials_cap and running + spec.budget.concurrency > trials_cap:
                raise LimitExceeded(
                    f"{running} concurrent trials in studies queued or running; this study's "
                    f"{spec.budget.concurrency} would pass the limit of {trials_cap}",
                    limits.retry_after_s,
                )
        return submit_study(repo, spec, owner=owner)


def _active_studies(repo: Repository, owner: str | None, cap: int) -> list[StudyRecord]:
    # Read at most what the limits need: one past the study cap, or all (the trials cap
    # needs every study's concurrency; a user is held to the study cap anyway).
    page = cap + 1 if cap else 10_000
    return [
        study
        for status in ("queued", "running")
        for study in repo.list_studies(status=status, owner=owner, limit=page)
    ]


def code_references(spec: StudySpec) -> Iterator[tuple[str, object]]:
    """Every (field path, value) of `spec` that a trial would import as code:
    ``trainable.function``, and for the built-in core every dataset or model value that
    is not a built-in one (``trainable.X``, ``fixed.X``, each value of ``space.X``), since
    the core loads any other string as ``module:function``."""
    from hpo.training.config import BUILTIN_DATASETS, BUILTIN_MODELS

    trainable = spec.trainable
    if trainable.function is not None:
        yield "trainable.function", trainable.function
        return
    for field, builtin in (("dataset", BUILTIN_DATASETS), ("model", BUILTIN_MODELS)):
        candidates: list[tuple[str, object]] = [
            (f"trainable.{field}", getattr(trainable, field)),
            (f"fixed.{field}", spec.fixed.get(field)),
        ]
        param = spec.space.get(field)
        if param is not None and param.is_categorical:
            where = f"space.{field}.{param.kind}"
            candidates += [(f"{where}[{i}]", v) for i, v in enumerate(param.values)]
        for path, value in candidates:
            if isinstance(value, str) and value not in builtin:
                yield path, value


def check_references(spec: StudySpec, allowed: Sequence[str]) -> list[FieldError]:
    """One error per code reference of `spec` that is malformed (`hpo.references.parse`)
    or whose module is not in `allowed` (``HPO_ALLOWED_MODULES``). Imports nothing."""
    errors = []
    for path, value in code_references(spec):
        try:
            reference = references.parse(value)
        except references.InvalidReference as exc:
            errors.append(FieldError(path, str(exc)))
            continue
        if not references.allowed(reference, allowed):
            listed = ", ".join(allowed) if allowed else "none"
            errors.append(
                FieldError(
                    path,
                    f"module '{reference.module}' is not allowed over REST "
                    f"(HPO_ALLOWED_MODULES: {listed})",
                )
            )
    return errors


def init_from_values(data: object) -> Iterator[tuple[str, object]]:
    """Every (field path, value) of a raw spec mapping that names weights to start from:
    ``fixed.init_from`` and each value of ``space.init_from``. Read from the raw mapping,
    before the spec is validated, since validating a file path touches the server's disk."""
    if not isinstance(data, dict):
        return
    fixed, space = data.get("fixed"), data.get("space")
    if isinstance(fixed, dict) and "init_from" in fixed:
        yield "fixed.init_from", fixed["init_from"]
    param = space.get("init_from") if isinstance(space, dict) else None
    if isinstance(param, dict):
        for kind in ("choice", "grid"):
            values = param.get(kind)
            if isinstance(values, list):
                yield from ((f"space.init_from.{kind}[{i}]", v) for i, v in enumerate(values))


def rest_init_from_errors(data: object) -> list[FieldError]:
    """Over REST, `init_from` names a trial (``STUDY/NUMBER``), never a file: the server's
    files are not the submitter's, and checking a path would tell a client which files
    exist on the server."""
    from hpo.training.pretrained import TrialWeights, parse_init_from

    errors = []
    for path, value in init_from_values(data):
        try:
            source = parse_init_from(value) if isinstance(value, str) else None
        except ValueError as exc:
            errors.append(FieldError(path, str(exc)))
            continue
        if not isinstance(source, TrialWeights):
            errors.append(
                FieldError(
                    path,
                    "over REST, init_from names a trial of a study you can see as "
                    "STUDY/NUMBER (e.g. 3/17); files on the server cannot be named",
                )
            )
    return errors


def invisible_init_from_errors(
    repo: Repository, spec: StudySpec, user: User | None
) -> list[FieldError]:
    """One error per ``init_from: STUDY/NUMBER`` whose study `user` may not see (the same
    words as for a missing one, so ids cannot be probed)."""
    from hpo.training.pretrained import TrialWeights, parse_init_from

    errors = []
    for path, value in init_from_values(spec.dump()):
        source = parse_init_from(value) if isinstance(value, str) else None
        if not isinstance(source, TrialWeights):
            continue
        try:
            get_visible_study(repo, source.study_id, user)
        except NotFoundError:
            errors.append(FieldError(path, f"no study with id {source.study_id}"))
    return errors


def searched_params(study: StudyRecord) -> list[str]:
    """The hyperparameters the study's spec searches, in the spec's order."""
    return list(study.spec.get("space") or {})


def can_see(study: StudyRecord, user: User | None) -> bool:
    """Whether `user` may see (and act on) `study`; `None` means auth is off: everyone may."""
    return user is None or user.admin or study.owner == user.identity


def get_visible_study(repo: Repository, study_id: int, user: User | None) -> StudyRecord:
    """The study, or `NotFoundError` if it is missing or `user` may not see it (the same
    error for both, so a caller cannot probe for other users' ids)."""
    study = repo.get_study(study_id)
    if not can_see(study, user):
        raise NotFoundError(f"no study with id {study_id}")
    return study


def cancel_study(repo: Repository, study_id: int, *, user: User | None) -> StudyRecord:
    """Cancel a queued or running study; returns it as it is now.

    A queued study is ``cancelled`` at once. A running one is flagged: its driver notices
    within a second or two, stops the trials, closes them and sets it ``cancelled``, so
    the record returned may still say ``running`` (with ``cancel_requested``). Raises
    `Conflict` if the study already finished, `NotFoundError` if it is not visible.
    """
    study = get_visible_study(repo, study_id, user)
    if repo.cancel_queued(study_id):
        repo.add_event(study_id, "cancelled", f"study cancelled while queued{_by(user)}")
        return repo.get_study(study_id)
    # Not queued: running (flag it for its driver), or a runner claimed it a moment ago
    # (the flag still stops it), or finished (nothing to cancel).
    if not repo.request_cancel(study_id):
        status = repo.get_study(study_id).status
        raise Conflict(f"study {study_id} is {status}; only queued or running studies cancel")
    if not study.cancel_requested:
        repo.add_event(study_id, "cancel_requested", f"cancel requested{_by(user)}")
    return repo.get_study(study_id)


def delete_study(repo: Repository, study_id: int, *, user: User | None) -> None:
    """Delete a study with its trials, metrics, events and checkpoints. Raises `Conflict`
    while it is running (cancel it first: its driver is still writing), `NotFoundError`
    if not visible.
    """
    get_visible_study(repo, study_id, user)
    # Read before the rows go: the recorded files may lie under an earlier root.
    locations = repo.checkpoint_locations(study_id)
    if not repo.delete_study_unless_running(study_id):
        raise Conflict(f"study {study_id} is running; cancel it before deleting it")
    artifacts.delete_study(study_id, locations, artifacts.default_root(repo.url))


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex (see the module docstring)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(repo: Repository, name: str, *, admin: bool) -> str:
    """Create a token for user `name` and return it; it is shown only this once (only its
    hash is stored). Raises `ValueError` if `name` already has a token."""
    token = secrets.token_urlsafe(32)
    repo.create_token(name, hash_token(token), admin)
    return token


def authenticate(repo: Repository, token: str | None) -> User | None:
    """The user `token` belongs to, or None if it is missing or unknown.

    ``HPO_API_TOKEN`` (settings ``api_token``) authenticates as the admin ``admin``;
    it is compared in constant time, and database tokens are looked up by hash.
    """
    if not token:
        return None
    env_token = get_settings().api_token
    if env_token and hmac.compare_digest(token.encode(), env_token.encode()):
        return User(ENV_ADMIN, admin=True, id=ENV_IDENTITY)
    token_hash = hash_token(token)
    found = repo.user_for_token_hash(token_hash)
    if found is None:
        return None
    name, admin = found
    return User(name, admin=admin, id=token_identity(token_hash))


def token_identity(token_hash: str) -> str:
    """The owner identity of the database token with this hash: stable for the token's
    life, distinct for every token (128 bits of its hash; the token cannot be recovered
    from it), and never equal to a name."""
    return f"token:{token_hash[:32]}"


def auth_enabled(repo: Repository) -> bool:
    """Whether requests must authenticate: a token is stored, or ``HPO_API_TOKEN`` is set."""
    return bool(get_settings().api_token) or repo.count_tokens() > 0


# --- errors shown to readers ---------------------------------------------------------------

_FRAME = re.compile(r'^(?P<indent>\s*)File "(?P<path>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$')
# Ray's header of a remote error names the worker's pid and IP address.
_RAY_WHERE = re.compile(r"(ray::[\w.]+\(\)) \((?:pid|ip)=[^)]*\)")


@cache
def _server_roots() -> tuple[str, ...]:
    """Where hpo, Python and the installed libraries live: no reader's business."""
    roots = {
        str(Path(__file__).resolve().parent.parent),  # this checkout or site-packages
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        *(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),
    }
    return tuple(sorted((r.rstrip("/") + "/" for r in roots if r), key=len, reverse=True))


def _server_file(path: str) -> bool:
    return (
        path.startswith(_server_roots())
        or "/site-packages/" in path
        or "/dist-packages/" in path
        or path.startswith("<frozen ")
    )


def public_error(text: str | None) -> str | None:
    """A trial's or study's error as readers of the study see it: the frames of hpo, Ray,
    Python and other libraries (and the server paths they carry) are left out, one line
    saying how many; the user's own frames stay, their file named without its directory;
    paths under the server's installation in messages become ``<server>/…``; Ray's
    header loses the worker's pid and IP address. The database keeps the full text."""
    if not text:
        return text
    kept: list[str] = []
    hidden = 0
    skip_code = False
    for line in text.splitlines():
        frame = _FRAME.match(line)
        if frame is not None:
            skip_code = False
            path = frame["path"]
            if _server_file(path):
                hidden += 1
                skip_code = True
                continue
            if hidden:
                kept.append(f"{frame['indent']}{_hidden(hidden)}")
                hidden = 0
            name = path.rsplit("/", 1)[-1]
            kept.append(f'{frame["indent"]}File "{name}", line {frame["line"]}{frame["rest"]}')
            continue
        if skip_code and line.startswith((" ", "\t")) and line.strip():
            continue  # the source line (and carets) of a hidden frame
        skip_code = False
        if hidden:
            kept.append(f"  {_hidden(hidden)}")
            hidden = 0
        kept.append(line)
    if hidden:
        kept.append(f"  {_hidden(hidden)}")
    shown = _RAY_WHERE.sub(r"\1", "\n".join(kept))
    for root in _server_roots():
        shown = shown.replace(root, "<server>/")
    return shown


def _hidden(frames: int) -> str:
    return f"[{frames} frame{'s' * (frames > 1)} of hpo and its libraries]"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, without port or brackets) is this machine
    only: ``localhost`` or a loopback address. A server without tokens serves only these."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _by(user: User | None) -> str:
    return "" if user is None else f" by {user.name}"
