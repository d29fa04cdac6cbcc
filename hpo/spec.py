"""The study spec: what a user writes in YAML (or JSON, or posts over REST), validated once.

`load_spec` is the one entry point. It parses the structure with pydantic, then checks
what needs the whole spec (names and values against the training core's vocabulary,
conditions, strategy names) and raises one `SpecError` listing every problem with its
field path. Inside hpo, a `StudySpec` is trusted.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from hpo import references
from hpo.errors import FieldError, SpecError, path_of
from hpo.samplers.options import option_errors
from hpo.space import (
    MAX_ERRORS,
    Param,
    check_budget,
    check_space,
    grid_size,
    is_active,
    topological_order,
)

# The names a user writes; the registries in hpo/samplers and hpo/execution must match
# these (a test checks), so the spec can be validated without importing Ray or Optuna.
SAMPLERS: tuple[str, ...] = (
    "grid", "random", "tpe", "gp", "bohb", "skopt", "auto", "nsga2", "motpe", "mogp",
)  # fmt: skip
# Samplers that take several objectives: those that search a Pareto front, and the two
# that never model values (a grid or random draws are the same for any objective).
MULTI_OBJECTIVE_SAMPLERS: tuple[str, ...] = ("nsga2", "motpe", "mogp", "random", "grid")
# Objectives of one study; Optuna's hypervolume-based ranks grow costly far beyond this.
MAX_OBJECTIVES = 8
SCHEDULERS: tuple[str, ...] = ("fifo", "hyperband", "asha", "median", "pbt")
STRATEGIES: dict[str, tuple[str, str]] = {
    "grid": ("grid", "fifo"),
    "random": ("random", "fifo"),
    "tpe": ("tpe", "fifo"),
    "bayes": ("tpe", "fifo"),
    "gp": ("gp", "fifo"),
    "hyperband": ("random", "hyperband"),
    "asha": ("random", "asha"),
    "bohb": ("bohb", "hyperband"),
}
# Hyperparameters that the study, not the space, decides.
RESERVED = {"epochs": "set budget.max_epochs instead", "seed": "set strategy.seed instead"}


def _is_reference(text: str) -> bool:
    """Whether `text` is a well-formed ``module:function`` by the one parser of them
    (`hpo.references`): the spec, the API and the trial never read one differently."""
    try:
        references.parse(text)
    except references.InvalidReference:
        return False
    return True


MAX_GRID = 100_000
# Hyperparameters a space (or `fixed`) may name: far beyond any real study, and a bound on
# what one request can make the validator build.
MAX_NAMES = 1000

FixedValue = StrictBool | int | float | str | list[StrictBool | int | float | str] | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Objective(_Model):
    """The metric a study optimizes, as reported by each trial every epoch."""

    metric: str = Field(min_length=1, max_length=100)
    mode: Literal["min", "max"]
    value: Literal["last", "best"] = Field(
        "last",
        description="A trial's one value: its last epoch's (the model it delivers), or its "
        "best epoch's.",
    )

    def value_of(self, values: Sequence[float | None]) -> float | None:
        """A trial's one value from its objective per epoch, in epoch order (None for an
        epoch without a finite value): the last epoch's for ``last`` (None if that epoch
        diverged: a diverged model has no value), the best finite one for ``best``.

            >>> Objective(metric="loss", mode="min", value="best").value_of([3.0, 1.0, 2.0])
            1.0
        """
        if self.value == "last":
            return values[-1] if values else None
        finite = [v for v in values if v is not None]
        if not finite:
            return None
        return min(finite) if self.mode == "min" else max(finite)


class Trainable(_Model):
    """What a trial runs: the built-in core on a dataset and model, or a user function."""

    dataset: str | None = Field(
        None, description="Built-in dataset name or 'pkg.module:function' returning (X, y)."
    )
    model: str | None = Field(
        None,
        description="Built-in model (mlp, cnn, rnn, transformer; default mlp) or "
        "'pkg.module:build' called as build(config, input_shape, num_outputs).",
    )
    function: str | None = Field(
        None, description="'pkg.module:function' called as function(config, report)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Trainable:
        if self.function is not None:
            if self.dataset is not None or self.model is not None:
                raise ValueError("give either function, or dataset (and model), not both")
            if not _is_reference(self.function):
                raise ValueError("function must look like 'package.module:function'")
        elif self.dataset is None:
            raise ValueError("needs dataset (built-in training core) or function")
        return self

    @property
    def builtin(self) -> bool:
        return self.function is None


class Budget(_Model):
    """How much to spend: trials, epochs per trial (the fidelity), parallelism, time."""

    trials: int = Field(20, ge=1, le=100_000, description="Trials to finish.")
    max_epochs: int = Field(10, ge=1, le=100_000, description="Epochs of a full trial.")
    min_epochs: int = Field(
        1, ge=1, le=100_000, description="Epochs before a scheduler may stop a trial."
    )
    concurrency: int = Field(1, ge=1, le=4096, description="Trials running at once.")
    time_limit_s: float | None = Field(
        None, gt=0, description="Wall-clock limit of the whole study."
    )
    max_failures: int = Field(0, ge=0, le=100, description="Retries of a failing trial.")
    checkpoint_every: Annotated[int, Field(ge=0, le=100_000)] | Literal["auto"] = Field(
        "auto",
        description="Built-in core: save each trial's whole state every this many epochs "
        "(and after its last one) for resume, retries and its weights; 0 = never; 'auto' "
        "(default): after every epoch unless saving would take over about 5% of training "
        "time.",
    )

    @model_validator(mode="after")
    def _epochs(self) -> Budget:
        if self.min_epochs > self.max_epochs:
            raise ValueError("min_epochs must be <= max_epochs")
        return self


class Resources(_Model):
    """What one trial asks Ray for. Fractional GPUs are bookkeeping only (Ray does not
    limit a trial's real GPU memory)."""

    cpu: float = Field(1.0, gt=0, le=1024)
    gpu: float = Field(0.0, ge=0, le=64)


# Warm-start points a spec may list: each is one trial, run before any other.
MAX_WARM_POINTS = 1000


class WarmStart(_Model):
    """What a study starts from instead of nothing (like Optuna's `enqueue_trial`).

    `points` are configs of the space evaluated first, in order (each complete: every
    parameter active under it, and no other). `from_study` names an earlier study of the
    same database whose finished trials (completed, and pruned with their histories) the
    sampler learns from before its first proposal; its space must search the same
    parameters, of the same kinds (checked when the study is submitted or run, since it
    needs the database).
    """

    points: list[dict[str, StrictBool | int | float | str]] = Field(
        default_factory=list,
        max_length=MAX_WARM_POINTS,
        description="Configs evaluated first, in order.",
    )
    from_study: int | None = Field(
        None, ge=1, description="An earlier study whose finished trials are learned from."
    )


class Strategy(_Model):
    """A sampler (proposes configs) paired with a scheduler (stops bad trials early).

    `name` is a shortcut (`asha` = random + asha); an explicit sampler or scheduler wins.
    """

    name: str | None = Field(None, description="Shortcut: " + ", ".join(STRATEGIES))
    sampler: str = Field("random", description="One of " + ", ".join(SAMPLERS))
    scheduler: str = Field("fifo", description="One of " + ", ".join(SCHEDULERS))
    seed: int | None = Field(0, ge=0, le=2**31 - 1, description="Seed of the sampler and trials.")
    reduction_factor: float = Field(
        3.0, gt=1, le=100, description="Hyperband/ASHA: keep 1/reduction_factor per rung."
    )
    options: dict[str, StrictBool | int | float | str] = Field(
        default_factory=dict, description="Sampler options, e.g. n_initial_points."
    )
    perturbation_interval: int = Field(
        2, ge=1, le=100_000, description="pbt: epochs between exploit/explore steps."
    )
    warm_start: WarmStart | None = Field(
        None, description="Points to evaluate first and/or an earlier study to learn from."
    )

    @model_validator(mode="before")
    @classmethod
    def _shortcut(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"name": data}
        if isinstance(data, Mapping) and isinstance(data.get("name"), str):
            pair = STRATEGIES.get(data["name"])
            if pair is None:
                raise ValueError(
                    f"unknown strategy '{data['name']}' (valid: {', '.join(STRATEGIES)})"
                )
            data = {"sampler": pair[0], "scheduler": pair[1], **data}
        return data


def _one_or_list_schema(schema: dict[str, Any]) -> None:
    """The JSON schema of `objective` as a user writes it: one objective (a mapping) or a
    list of 2 to `MAX_OBJECTIVES` (the field itself always holds a tuple)."""
    item = schema.pop("items")
    schema.pop("type", None)
    schema["anyOf"] = [
        item,
        {"type": "array", "items": item, "minItems": 2, "maxItems": MAX_OBJECTIVES},
    ]


class StudySpec(_Model):
    """A whole study, as written under `search_spaces/`.

    `objective` is one mapping, or a list of objectives for a multi-objective study (a
    Pareto front). Inside, `objectives` holds them all and `objective` is the first one:
    what Ray reports on, what early stopping and progress watch, what `best_value` is.
    """

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    objectives: tuple[Objective, ...] = Field(
        alias="objective", json_schema_extra=_one_or_list_schema
    )
    trainable: Trainable
    budget: Budget = Field(default_factory=Budget)
    resources: Resources = Field(default_factory=Resources)
    strategy: Strategy = Field(default_factory=Strategy)
    space: dict[str, Param] = Field(default_factory=dict)
    fixed: dict[str, FixedValue] = Field(default_factory=dict)

    @field_validator("space", "fixed", mode="before")
    @classmethod
    def _bounded_sections(cls, value: Any) -> Any:
        # Checked before any parameter is validated: a body of 35,000 hyperparameters is
        # refused at once instead of after building every one of them.
        if isinstance(value, Mapping) and len(value) > MAX_NAMES:
            raise ValueError(f"at most {MAX_NAMES} hyperparameters (got {len(value)})")
        return value

    @field_validator("objectives", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # One objective is written as a mapping; `load_spec` names its fields without the
        # list index this wrapping adds.
        if not isinstance(value, list | tuple):
            return (value,)
        if not 2 <= len(value) <= MAX_OBJECTIVES:
            raise ValueError(
                f"a list of objectives needs 2 to {MAX_OBJECTIVES} (got {len(value)}); "
                "write a single objective as a mapping"
            )
        return value

    @property
    def objective(self) -> Objective:
        """The first (for a single-objective study, the only) objective."""
        return self.objectives[0]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def dump(self) -> dict[str, Any]:
        """The JSON/YAML form; `load_spec(spec.dump()) == spec`. One objective is dumped
        as a mapping, several as a list."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not self.multi_objective:
            data["objective"] = data["objective"][0]
        data["space"] = {name: p.dump() for name, p in self.space.items()}
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.dump(), sort_keys=False)

    def base_config(self) -> dict[str, Any]:
        """What every trial of this study gets before sampling: trainable, budget, fixed.

        For the built-in core, early stopping watches the study's objective unless the
        spec says otherwise. Every trial, a user function's too, gets `data_seed` (which
        draws the split and any generated data): the study's `strategy.seed` unless
        `fixed` sets it, so all trials of a study share one split.
        """
        config: dict[str, Any] = {}
        if self.trainable.builtin:
            config["dataset"] = self.trainable.dataset
            config["model"] = self.trainable.model or "mlp"
            config["early_stopping_metric"] = self._watched_metric()
        config["data_seed"] = self.strategy.seed or 0
        config["epochs"] = self.budget.max_epochs
        config.update(self.fixed)
        return config

    def _watched_metric(self) -> str:
        """The metric the core's early stopping watches: the first objective that is a
        learning metric (a cost such as ``train_seconds`` only grows), else ``val_loss``."""
        from hpo.training.config import METRICS_COST

        for objective in self.objectives:
            if objective.metric not in METRICS_COST:
                return objective.metric
        return "val_loss"

    def trial_config(self, params: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        """The full resolved config of one trial: base config, sampled params, seed."""
        config = self.base_config()
        config.update(params)
        if seed is not None:
            config["seed"] = seed
        return config


# --- loading ------------------------------------------------------------------------------


def load_spec(source: str | Path | Mapping[str, Any]) -> StudySpec:
    """Parse and validate a spec from a path, YAML/JSON text, or a mapping.

    Raises SpecError with every problem found (never a pydantic traceback).
    """
    data = _read(source)
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        one = not isinstance(data.get("objective"), list | tuple)
        errors = [
            FieldError(_objective_path(path_of(e["loc"]), one), _message(e))
            for e in exc.errors(include_url=False, include_context=False)[:MAX_ERRORS]
        ]
        # Vocabulary problems are independent of the structural ones: report them in the
        # same list so the user fixes everything in one edit.
        errors += _raw_vocabulary_errors(data)
        raise SpecError(errors) from None
    errors = semantic_errors(spec)
    if errors:
        raise SpecError(errors)
    return spec


def _objective_path(path: str, one: bool) -> str:
    """`path` as the user wrote it: a single objective (a mapping) has no list index."""
    if one and path.startswith("objective.0"):
        return "objective" + path.removeprefix("objective.0")
    return path


def _read(source: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Path) or (
        isinstance(source, str)
        and "\n" not in source
        and source.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError([FieldError("", f"cannot read {path}: {exc.strerror}")]) from None
    else:
        text = str(source)
    return parse_text(text)


# A number written with more digits than this is refused by the field it is in; Python
# itself refuses to convert more than 4,300 decimal digits to an int.
MAX_NUMBER_DIGITS = 4300


class OversizedNumber:
    """Stands in for a number written with more than `MAX_NUMBER_DIGITS` characters: no
    field accepts it, so the error names the field instead of failing the whole parse."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length

    def __repr__(self) -> str:
        return f"<number of {self.length} characters>"


def read_number(text: str, convert: Any) -> Any:
    """`convert(text)`, or an `OversizedNumber` if `text` is too long to convert (the JSON
    and YAML readers' hook for numbers)."""
    if len(text) > MAX_NUMBER_DIGITS:
        return OversizedNumber(len(text))
    return convert(text)


class _SpecLoader(yaml.SafeLoader):
    """YAML's safe loader without dates (a spec has none: ``name: 2024-13-45`` is the text
    written, not a failed date) and with over-long numbers read as `OversizedNumber`."""


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # Every scalar passes here (strings, numbers, dates): parsing counts against the REST
    # API's time budget like the rest of validation, so a huge YAML body is cut off too.
    check_budget()
    return loader.construct_scalar(node)


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return read_number(_text(loader, node), lambda _: loader.construct_yaml_int(node))


def _float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return read_number(_text(loader, node), lambda _: loader.construct_yaml_float(node))


_SpecLoader.add_constructor(_TIMESTAMP, _text)
_SpecLoader.add_constructor("tag:yaml.org,2002:str", _text)
_SpecLoader.add_constructor("tag:yaml.org,2002:int", _int)
_SpecLoader.add_constructor("tag:yaml.org,2002:float", _float)


def _json_fast_path(text: str) -> Any:
    """A JSON object parsed as JSON (YAML is its superset, but PyYAML takes seconds on a
    1 MiB document that `json` reads in milliseconds); None when `text` is not one."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(
            text,
            parse_int=lambda t: read_number(t, int),
            parse_float=lambda t: read_number(t, float),
        )
    except (ValueError, RecursionError):
        return None  # YAML's flow style, or broken: YAML's parser says which


def parse_text(text: str) -> Mapping[str, Any]:
    """YAML (a superset of JSON) text to a mapping; syntax errors become a SpecError."""
    data = _json_fast_path(text)
    try:
        if data is None:
            data = yaml.load(text, Loader=_SpecLoader)
    except SpecError:
        raise  # the time budget ran out while parsing
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError([FieldError("", f"not valid YAML{where}: {problem}")]) from None
    except (ValueError, OverflowError) as exc:
        # A scalar YAML's constructors could not convert (no field is known here).
        raise SpecError([FieldError("", f"not valid YAML: {exc}")]) from None
    if not isinstance(data, Mapping):
        raise SpecError([FieldError("", "a spec must be a mapping of fields (name, objective, …)")])
    return data


def _message(error: Mapping[str, Any]) -> str:
    if isinstance(error.get("input"), OversizedNumber):
        return f"number too large ({error['input'].length} characters)"
    msg = str(error["msg"])
    # pydantic prefixes messages from our validators; the field path already says where.
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "finite_number":
        return "must be a finite number"
    return msg


def _raw_vocabulary_errors(data: Mapping[str, Any]) -> list[FieldError]:
    from hpo.training import config as vocab

    trainable = data.get("trainable")
    if isinstance(trainable, Mapping) and trainable.get("function") is not None:
        return []
    space, fixed = data.get("space"), data.get("fixed")
    sources = [s for s in (trainable, fixed) if isinstance(s, Mapping)]
    user = any(vocab.uses_user_code(s) for s in sources)
    errors: list[FieldError] = []
    if isinstance(space, Mapping):
        for name in space:
            check_budget()
            if len(errors) >= MAX_ERRORS:
                break
            if err := _name_error("space", str(name), user=user):
                errors.append(err)
    if isinstance(fixed, Mapping):
        errors += _fixed_errors(fixed, user=user)
    return errors


# --- checks that need the whole spec ------------------------------------------------------


def semantic_errors(spec: StudySpec) -> list[FieldError]:
    """Every cross-field problem of a structurally valid spec."""
    errors = check_space(spec.space)
    for name in spec.space.keys() & spec.fixed.keys():
        errors.append(FieldError(f"space.{name}", "also set in fixed; keep one"))
    strategy = spec.strategy
    if strategy.sampler not in SAMPLERS:
        errors.append(
            FieldError("strategy.sampler", _unknown("sampler", strategy.sampler, SAMPLERS))
        )
    if strategy.scheduler not in SCHEDULERS:
        errors.append(
            FieldError("strategy.scheduler", _unknown("scheduler", strategy.scheduler, SCHEDULERS))
        )
    errors += [
        FieldError(f"strategy.options.{name}", why)
        for name, why in option_errors(strategy.sampler, strategy.options)
    ]
    if strategy.warm_start is not None:
        errors += _warm_point_errors(spec, strategy.warm_start)
    if strategy.sampler == "grid":
        errors += _grid_errors(spec)
    if strategy.scheduler == "pbt":
        errors += _pbt_errors(spec)
    if spec.multi_objective:
        errors += _multi_objective_errors(spec)
    if spec.trainable.builtin:
        errors += _builtin_errors(spec)
    return errors


def _pbt_errors(spec: StudySpec) -> list[FieldError]:
    """PBT copies checkpoints between trials and perturbs every parameter of the space:
    it needs the built-in core saving every epoch, and a space without conditions."""
    errors = []
    if not spec.trainable.builtin:
        errors.append(
            FieldError(
                "strategy.scheduler",
                "pbt needs the built-in core (a user function keeps no checkpoint)",
            )
        )
    elif spec.budget.checkpoint_every not in (1, "auto"):
        errors.append(
            FieldError(
                "budget.checkpoint_every",
                "pbt copies each trial's latest state: must be 1 (or auto, which pbt makes 1)",
            )
        )
    errors += [
        FieldError(f"space.{name}.when", "pbt perturbs every parameter: no conditions")
        for name, p in spec.space.items()
        if p.when is not None
    ]
    if not spec.space:
        errors.append(FieldError("space", "pbt needs at least one parameter to perturb"))
    return errors


def _warm_point_errors(spec: StudySpec, warm: WarmStart) -> list[FieldError]:
    """Why each warm-start point is not a config of the space: a name the space does not
    search, a value the parameter cannot take, an inactive parameter given, an active
    one missing; and more points than the study has trials."""
    errors: list[FieldError] = []
    if len(warm.points) > spec.budget.trials:
        errors.append(
            FieldError(
                "strategy.warm_start.points",
                f"{len(warm.points)} points but budget.trials is {spec.budget.trials}",
            )
        )
    order = topological_order(spec.space)
    for i, point in enumerate(warm.points):
        at = f"strategy.warm_start.points.{i}"
        for name in point:
            if name not in spec.space:
                where = "set in fixed" if name in spec.fixed else "not searched"
                errors.append(FieldError(f"{at}.{name}", f"not a parameter of the space ({where})"))
        active: dict[str, Any] = {}
        for name in order:
            param = spec.space[name]
            if not is_active(param, active):
                if name in point:
                    parents = ", ".join(f"{k} in {v}" for k, v in (param.when or {}).items())
                    errors.append(
                        FieldError(
                            f"{at}.{name}", f"inactive in this point (active when {parents})"
                        )
                    )
                continue
            if name not in point:
                errors.append(FieldError(f"{at}.{name}", "missing: the parameter is active here"))
                continue
            if not param.contains(point[name]):
                errors.append(FieldError(f"{at}.{name}", _not_a_value(param, point[name])))
            active[name] = point[name]
        if len(errors) >= MAX_ERRORS:
            break
    return errors[:MAX_ERRORS]


def _not_a_value(param: Param, value: Any) -> str:
    if param.is_categorical:
        return f"{value!r} is not one of {param.values}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value!r} is not a number"
    low, high = param.bounds
    if not low <= value <= high:
        return f"{value!r} is outside [{low}, {high}]"
    return f"{value!r} is not on the parameter's integer step ({param.step or 1})"


def _grid_errors(spec: StudySpec) -> list[FieldError]:
    errors = [
        FieldError(f"space.{name}", "the grid sampler needs choice, grid or grid_points")
        for name, p in spec.space.items()
        if not p.enumerable
    ]
    if not errors and grid_size(spec.space, MAX_GRID) > MAX_GRID:
        errors.append(FieldError("space", f"the grid has more than {MAX_GRID} configs"))
    return errors


def _builtin_errors(spec: StudySpec) -> list[FieldError]:
    from hpo.training import config as vocab

    errors: list[FieldError] = []
    trainable = spec.trainable
    dataset = trainable.dataset or ""
    if dataset not in vocab.BUILTIN_DATASETS and not _is_reference(dataset):
        errors.append(
            FieldError(
                "trainable.dataset",
                f"unknown dataset '{dataset}' (built-in: {', '.join(vocab.BUILTIN_DATASETS)}; "
                "or 'package.module:function' returning (X, y))",
            )
        )
    for field, value in (("dataset", trainable.dataset), ("model", trainable.model)):
        if value is not None and (reason := vocab.validate_value(field, value)):
            errors.append(FieldError(f"trainable.{field}", reason))
    user = _user_code(spec)
    for name, param in spec.space.items():
        check_budget()
        if len(errors) >= MAX_ERRORS:
            break
        if err := _name_error("space", name, user=user):
            errors.append(err)
            continue
        if name in vocab.VOCABULARY:
            errors += _param_value_errors(name, param)
    errors += _fixed_errors(spec.fixed, user=user)
    errors += _objective_errors(spec)
    known = {e.path for e in errors}
    errors += [e for e in _region_errors(spec) if e.path not in known]
    return errors


def _user_code(spec: StudySpec) -> bool:
    """Whether every trial's dataset, or every trial's model, is user code
    (``pkg.module:function``): then names outside the core's vocabulary may be searched
    or fixed, and the core passes them on to that code."""
    from hpo.training import config as vocab

    base = spec.base_config()
    return any(
        all(vocab.is_user_reference(value) for value, _ in _candidates(name, spec.space, base))
        for name in ("dataset", "model")
    )


def _name_error(section: str, name: str, *, user: bool = False) -> FieldError | None:
    """Why `name` may not appear in `section`, or None; with `user` code (see
    `_user_code`), names outside the vocabulary are allowed."""
    from hpo.training import config as vocab

    if name in RESERVED:
        return FieldError(f"{section}.{name}", f"not a searchable hyperparameter: {RESERVED[name]}")
    if section == "space" and name == "data_seed":
        return FieldError(
            "space.data_seed",
            "not a searchable hyperparameter: every trial of a study is scored on one split; "
            "set it in fixed (default: strategy.seed)",
        )
    if name not in vocab.VOCABULARY and not user:
        close = difflib.get_close_matches(name, vocab.VOCABULARY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see README: Hyperparameters)"
        return FieldError(f"{section}.{name}", "unknown hyperparameter" + hint)
    return None


def _fixed_errors(fixed: Mapping[str, Any], *, user: bool = False) -> list[FieldError]:
    from hpo.training import config as vocab

    errors: list[FieldError] = []
    for name, value in fixed.items():
        check_budget()
        if len(errors) >= MAX_ERRORS:
            break
        if err := _name_error("fixed", str(name), user=user):
            errors.append(err)
        elif str(name) in vocab.VOCABULARY and (reason := vocab.validate_value(str(name), value)):
            errors.append(FieldError(f"fixed.{name}", reason))
    return errors


def _param_value_errors(name: str, param: Param) -> list[FieldError]:
    """Each listed value, and both ends of a range, must be a valid value of `name`."""
    from hpo.training import config as vocab

    where = f"space.{name}.{param.kind}"
    if name in vocab.INTEGER_NAMES and param.kind in ("uniform", "loguniform"):
        low, high = param.bounds
        return [
            FieldError(
                where,
                f"{name} takes integers only; search it with "
                f"{{int: [{int(low)}, {int(high)}]}}"
                + (", log: true" if param.kind == "loguniform" else ""),
            )
        ]
    if param.is_categorical:
        candidates = [(f"{where}[{i}]", v) for i, v in enumerate(param.values)]
    else:
        low, high = param.bounds
        candidates = [(where, low), (where, high)]
    errors = []
    for i, (path, value) in enumerate(candidates):
        if i % 256 == 0:
            check_budget()
        if reason := vocab.validate_value(name, value):
            errors.append(FieldError(path, f"{_show(value)}: {reason}"))
            if len(errors) >= MAX_ERRORS:
                break
    return errors


def _region_errors(spec: StudySpec) -> list[FieldError]:
    """Run the core's cross-field checks on every region the space can produce.

    Each check reads a few hyperparameters; for those (and the parents their conditions
    name) it tries every combination of candidate values: both ends of each range, every
    listed value, and, where a condition can switch a parameter off, the value the trial
    then gets (fixed, or the default). Conditions are respected, so a combination no
    trial can see is never reported. One error per check and field path.
    """
    from hpo.training import config as vocab

    base = spec.base_config()
    errors: list[FieldError] = []
    for check in vocab.CROSS_CHECKS:
        names = _with_parents(check.fields, spec.space)
        options = [_candidates(name, spec.space, base) for name in names]
        reported: set[str] = set()
        for combo in itertools.islice(itertools.product(*options), MAX_REGION_COMBOS):
            chosen = dict(zip(names, combo, strict=True))
            if not _reachable(chosen, spec.space):
                continue
            values = {name: value for name, (value, _) in chosen.items()}
            if any(_invalid(name, value) for name, value in values.items()):
                continue  # already reported on its own; combinations need valid values
            for field, reason in check.run(values):
                path = _blame(field, check, chosen, dict(zip(names, options, strict=True)), spec)
                if path in reported:
                    continue
                reported.add(path)
                shown = ", ".join(f"{n}={values[n]!r}" for n in check.fields if n != field)
                errors.append(
                    FieldError(path, f"{reason} (with {field}={values[field]!r}, {shown})")
                )
    return errors


def _invalid(name: str, value: Any) -> bool:
    from hpo.training import config as vocab

    try:
        return vocab.validate_value(name, value) is not None
    except TypeError:  # unhashable or exotic values: the per-value checks report them
        return True


# A check reads at most a handful of names with a few candidates each; this only guards
# against a pathological space (dozens of listed values on every name of one check).
MAX_REGION_COMBOS = 200_000


def _with_parents(fields: tuple[str, ...], space: Mapping[str, Param]) -> list[str]:
    """`fields` plus, transitively, every parent their conditions name (parents first)."""
    names: list[str] = []

    def add(name: str) -> None:
        if name in names:
            return
        for parent in (space[name].when or {}) if name in space else {}:
            add(parent)
        names.append(name)

    for name in fields:
        add(name)
    return names


def _candidates(
    name: str, space: Mapping[str, Param], base: Mapping[str, Any]
) -> list[tuple[Any, bool]]:
    """(value, drawn from the space) pairs hyperparameter `name` can take in a trial."""
    from hpo.training import config as vocab

    fallback = base.get(name, vocab.default_value(name)) if name in vocab.VOCABULARY else None
    param = space.get(name)
    if param is None:
        return [(fallback, False)]
    drawn = param.values if param.is_categorical else list(param.bounds)
    if param.kind == "int":
        drawn = [int(v) for v in drawn]
    options = [(v, True) for v in drawn]
    if param.when:  # switched off, the trial gets the fixed value or the default
        options.append((fallback, False))
    return options


def _reachable(chosen: Mapping[str, tuple[Any, bool]], space: Mapping[str, Param]) -> bool:
    """Whether some trial sees this combination: a space parameter is drawn exactly when
    its condition holds on its (drawn) parents."""
    for name, (_, drawn) in chosen.items():
        param = space.get(name)
        if param is None or not param.when:
            continue
        active = all(
            chosen[parent][1]
            and any(type(chosen[parent][0]) is type(v) and chosen[parent][0] == v for v in values)
            for parent, values in param.when.items()
        )
        if active != drawn:
            return False
    return True


def _blame(
    field: str,
    check: Any,
    chosen: Mapping[str, tuple[Any, bool]],
    options: Mapping[str, list[tuple[Any, bool]]],
    spec: StudySpec,
) -> str:
    """The path to fix for a problem about `field`: the field itself when the space drew
    it; else a searched name of the check whose other values avoid the problem (the
    range or choice that reaches the bad region); else where the user set `field`."""
    if chosen[field][1]:
        return f"space.{field}"
    values = {name: value for name, (value, _) in chosen.items()}
    for name in check.fields:
        if name == field or not chosen[name][1]:
            continue
        for other, drawn in options[name]:
            if drawn and other != values[name]:
                problems = check.run({**values, name: other})
                if all(f != field for f, _ in problems):
                    return f"space.{name}"

    def where(name: str) -> str | None:
        if name in spec.fixed:
            return f"fixed.{name}"
        if name == "epochs":
            return "budget.max_epochs"
        if name in ("dataset", "model") and getattr(spec.trainable, name) is not None:
            return f"trainable.{name}"
        if name == "early_stopping_metric":
            return "objective.metric"
        if name in spec.space:
            return f"space.{name}"
        return None

    for name in (field, *check.fields):
        if path := where(name):
            return path
    return f"fixed.{field}"


def _show(value: Any) -> str:
    """A value's repr, cut short: an absurd number must not flood the error list."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _multi_objective_errors(spec: StudySpec) -> list[FieldError]:
    """What a study of several objectives refuses: a repeated metric, ``value: best`` (the
    values must all be one model's, the last epoch's), a sampler that learns one value,
    and a scheduler that stops trials by one metric."""
    errors: list[FieldError] = []
    n = len(spec.objectives)
    seen: dict[str, int] = {}
    for i, objective in enumerate(spec.objectives):
        if objective.metric in seen:
            errors.append(
                FieldError(
                    f"objective.{i}.metric",
                    f"'{objective.metric}' is already objective {seen[objective.metric]}; "
                    "each objective needs its own metric",
                )
            )
        seen.setdefault(objective.metric, i)
        if objective.value == "best":
            errors.append(
                FieldError(
                    f"objective.{i}.value",
                    "a multi-objective study scores one model per trial, its last epoch's: "
                    "'best' would take each objective from a different epoch (use last)",
                )
            )
    if spec.strategy.sampler in SAMPLERS and spec.strategy.sampler not in MULTI_OBJECTIVE_SAMPLERS:
        errors.append(
            FieldError(
                "strategy.sampler",
                f"sampler '{spec.strategy.sampler}' learns one objective; a study with {n} "
                f"objectives needs one of {', '.join(MULTI_OBJECTIVE_SAMPLERS)}",
            )
        )
    if spec.strategy.scheduler in SCHEDULERS and spec.strategy.scheduler != "fifo":
        errors.append(
            FieldError(
                "strategy.scheduler",
                f"scheduler '{spec.strategy.scheduler}' stops trials by one metric, which "
                f"would cut the front short; a study with {n} objectives runs every trial "
                "its budget: use fifo",
            )
        )
    return errors


def _objective_errors(spec: StudySpec) -> list[FieldError]:
    from hpo.training import config as vocab

    dataset = spec.trainable.dataset or ""
    regression = vocab.is_regression_dataset(dataset)
    if regression is None:  # a user dataset: the task is known only once loaded
        valid = tuple(dict.fromkeys(vocab.METRICS_CLASSIFICATION + vocab.METRICS_REGRESSION))
    else:
        valid = vocab.METRICS_REGRESSION if regression else vocab.METRICS_CLASSIFICATION
    valid += vocab.METRICS_COST
    errors: list[FieldError] = []
    for i, objective in enumerate(spec.objectives):
        where = f"objective.{i}" if spec.multi_objective else "objective"
        metric, mode = objective.metric, objective.mode
        if metric not in valid:
            task = {None: "this", True: "a regression", False: "a classification"}[regression]
            errors.append(
                FieldError(
                    f"{where}.metric",
                    f"'{metric}' is not reported for {task} dataset (valid: {', '.join(valid)})",
                )
            )
        elif metric in vocab.METRICS_COST and objective.value == "best":
            errors.append(
                FieldError(
                    f"{where}.value",
                    f"{metric} is a cost that only grows or stays: its best epoch is the "
                    "first, not a model worth delivering (use last)",
                )
            )
        elif vocab.metric_mode(metric) != mode:
            errors.append(
                FieldError(
                    f"{where}.mode",
                    f"{metric} is better when {'higher' if mode == 'min' else 'lower'}; "
                    f"mode must be {vocab.metric_mode(metric)}",
                )
            )
    return errors


def _unknown(what: str, name: str, valid: tuple[str, ...]) -> str:
    return f"unknown {what} '{name}' (valid: {', '.join(valid)})"


def spec_json(spec: StudySpec) -> str:
    """Compact canonical JSON of a spec (what the database stores)."""
    return json.dumps(spec.dump(), sort_keys=True, separators=(",", ":"))


def apply_overrides(
    spec: StudySpec,
    *,
    strategy: str | None = None,
    sampler: str | None = None,
    scheduler: str | None = None,
    trials: int | None = None,
    name: str | None = None,
) -> StudySpec:
    """The CLI's and the API's overrides (`--strategy`, `--trials`, …), re-validated."""
    data = spec.dump()
    if strategy is not None:
        seed = data["strategy"].get("seed")
        data["strategy"] = {"name": strategy, "seed": seed}
    if sampler is not None:
        data["strategy"]["sampler"] = sampler
        data["strategy"].pop("name", None)
    if scheduler is not None:
        data["strategy"]["scheduler"] = scheduler
        data["strategy"].pop("name", None)
    if trials is not None:
        data["budget"]["trials"] = trials
    if name is not None:
        data["name"] = name
    return load_spec(data)
