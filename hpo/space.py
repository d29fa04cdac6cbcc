"""Search spaces: distributions, conditions, seeded sampling and grid expansion.

A space is an ordered mapping ``name -> Param`` written in YAML as one key per
distribution::

    lr:        {loguniform: [1.0e-4, 0.3]}
    momentum:  {uniform: [0.5, 0.99], when: {optimizer: [momentum, nesterov]}}
    hidden:    {int: [32, 512], log: true}
    dropout:   {uniform: [0.0, 0.5], step: 0.05}
    optimizer: {choice: [sgd, adam]}
    lr_grid:   {grid: [0.001, 0.01, 0.1]}

A parameter with ``when`` is *conditional*: it is present in a config only when every
named parent is present and takes one of the listed values (AND over parents). A
parameter whose parent is absent is absent too, so conditions chain.

This module knows nothing of Ray, Optuna or scikit-optimize: each sampler converts a
`Param` to its library's form itself, so only that sampler imports its library.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from hpo.errors import FieldError, SpecError

# StrictBool first so that `true` stays a bool and is never read as the integer 1.
Scalar = StrictBool | int | float | str
Kind = Literal["uniform", "loguniform", "int", "choice", "grid"]
KINDS: tuple[Kind, ...] = ("uniform", "loguniform", "int", "choice", "grid")

# Enough to make any sensible grid; more points than this is a typo, not a search.
MAX_GRID_POINTS = 10_000
# Problems reported per check: past this a spec is refused anyway, and finding more
# only costs time (a hostile spec can hold a hundred thousand of them).
MAX_ERRORS = 50

_deadline: ContextVar[float | None] = ContextVar("hpo_validation_deadline", default=None)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Validation inside this block (`check_space`, `grid_size`, the spec's checks) stops
    with a `SpecError` once `seconds` have passed (`check_budget`). The REST API wraps each
    submitted spec in one, so no spec can hold a worker for long."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def check_budget() -> None:
    """Raise `SpecError` if the current `time_budget` is spent (no-op outside one)."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise SpecError(
            [FieldError("", "the spec is too large or intricate to validate in the time allowed")]
        )


class Param(BaseModel):
    """One searchable hyperparameter: exactly one distribution key plus its options."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )

    uniform: tuple[float, float] | None = Field(None, description="Uniform on [low, high].")
    loguniform: tuple[float, float] | None = Field(
        None, description="Log-uniform on [low, high], low > 0."
    )
    int_: tuple[int, int] | None = Field(
        None, alias="int", description="Integers on [low, high] (with `log`, `step`)."
    )
    choice: list[Scalar] | None = Field(None, description="One of the listed values.")
    grid: list[Scalar] | None = Field(
        None, description="Listed values, enumerated by the grid sampler (a choice elsewhere)."
    )
    step: float | None = Field(
        None, gt=0, description="Quantization step for `uniform` and `int` (values low + k*step)."
    )
    log: bool = Field(False, description="Sample `int` on a log scale.")
    grid_points: int | None = Field(
        None,
        ge=2,
        le=MAX_GRID_POINTS,
        description="How many evenly spaced values (log-spaced for loguniform / log int) "
        "the grid sampler enumerates from a range.",
    )
    when: dict[str, list[Scalar]] | None = Field(
        None, description="Condition: present only when each named parameter takes a listed value."
    )

    @field_validator("uniform", "loguniform", "int_")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None, info: Any) -> tuple[float, float] | None:
        if v is None:
            return v
        low, high = v
        if info.field_name == "loguniform" and low <= 0:
            raise ValueError("low must be > 0")
        if info.field_name == "int_":
            if high < low:
                raise ValueError("low must be <= high")
        elif not low < high:
            raise ValueError("low must be < high")
        return v

    @field_validator("choice", "grid")
    @classmethod
    def _values(cls, v: list[Any] | None) -> list[Any] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("needs at least one value")
        keys = [(type(x).__name__, x) for x in v]
        if len(set(keys)) != len(keys):
            raise ValueError("values must be distinct")
        return v

    @field_validator("when")
    @classmethod
    def _when(cls, v: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if v is not None:
            if not v:
                raise ValueError("needs at least one parent parameter")
            for parent, values in v.items():
                if not values:
                    raise ValueError(f"{parent}: needs at least one value")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Param:
        present = [k for k in KINDS if self._raw(k) is not None]
        if len(present) != 1:
            raise ValueError(
                "needs exactly one distribution: uniform, loguniform, int, choice or grid"
                + (f" (got {', '.join(present)})" if present else "")
            )
        kind = present[0]
        if self.step is not None and kind not in ("uniform", "int"):
            raise ValueError("step applies only to uniform and int")
        if self.log and kind != "int":
            raise ValueError("log applies only to int (use loguniform for floats)")
        if self.grid_points is not None and kind not in ("uniform", "loguniform", "int"):
            raise ValueError("grid_points applies only to uniform, loguniform and int")
        if kind == "int":
            assert self.int_ is not None
            if self.step is not None and (self.step != int(self.step)):
                raise ValueError("step of an int must be a whole number")
            if self.log and self.int_[0] < 1:
                raise ValueError("log int needs low >= 1")
            if self.log and self.step not in (None, 1):
                raise ValueError("log and step cannot be combined")
        if kind == "uniform" and self.step is not None:
            assert self.uniform is not None
            low, high = self.uniform
            # Tolerate float rounding of `high` (32768.001 - 32768 < 0.001).
            if self.step > (high - low) + 1e-9 * max(abs(low), abs(high), high - low):
                raise ValueError("step must not exceed high - low")
        return self

    def _raw(self, kind: str) -> Any:
        return getattr(self, "int_" if kind == "int" else kind)

    # --- what the rest of hpo asks of a parameter -------------------------------------

    @cached_property
    def kind(self) -> Kind:
        """The distribution key the user wrote (computed once: validation of a large
        space asks it of every parameter many times)."""
        return next(k for k in KINDS if self._raw(k) is not None)

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a range; raises for choice/grid."""
        value = self._raw(self.kind)
        if self.kind in ("choice", "grid"):
            raise TypeError(f"{self.kind} has no bounds")
        return (value[0], value[1])

    @property
    def values(self) -> list[Any]:
        """The listed values of a choice/grid; raises for ranges."""
        if self.kind not in ("choice", "grid"):
            raise TypeError(f"{self.kind} has no listed values")
        return list(self._raw(self.kind))

    @property
    def is_categorical(self) -> bool:
        return self.kind in ("choice", "grid")

    @property
    def enumerable(self) -> bool:
        """Whether the grid sampler can enumerate it (listed values or `grid_points`)."""
        return self.is_categorical or self.grid_points is not None

    def contains(self, value: Any) -> bool:
        """Whether `value` is a value this parameter can take (exactly, for listed values)."""
        kind = self.kind
        if kind in ("choice", "grid"):
            return any(type(value) is type(v) and value == v for v in self.values)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        low, high = self.bounds
        if not low <= value <= high:
            return False
        if kind == "int":
            return isinstance(value, int) and (value - int(low)) % int(self.step or 1) == 0
        return True

    def dump(self) -> dict[str, Any]:
        """The YAML form: exactly what a user would write (parse(dump(p)) == p)."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


Space = dict[str, Param]


def _clean(x: float) -> float:
    # Quantized values such as 0.1 + 3*0.05 pick up float noise; 12 significant digits keep
    # them readable and still exact enough to land inside the bounds.
    return float(f"{x:.12g}")


def sample_value(param: Param, rng: random.Random) -> Any:
    """Draw one value of `param` with `rng` (uniform over its domain, log where asked)."""
    kind = param.kind
    if kind in ("choice", "grid"):
        return rng.choice(param.values)
    low, high = param.bounds
    if kind == "int":
        if param.log:
            x = math.exp(rng.uniform(math.log(low - 0.5), math.log(high + 0.5)))
            return int(min(max(round(x), low), high))
        step = int(param.step or 1)
        return int(low) + step * rng.randint(0, (int(high) - int(low)) // step)
    if kind == "loguniform":
        return min(max(math.exp(rng.uniform(math.log(low), math.log(high))), low), high)
    if param.step is not None:
        n = math.floor((high - low) / param.step + 1e-9)
        return min(max(_clean(low + rng.randint(0, n) * param.step), low), high)
    return rng.uniform(low, high)


def _snap_int(param: Param, x: float) -> int:
    """The value of an `int` parameter nearest to `x` (on its step, inside its bounds)."""
    low, high = (int(b) for b in param.bounds)
    step = int(param.step or 1)
    k = min(max(round((x - low) / step), 0), (high - low) // step)
    return low + k * step


def grid_values(param: Param) -> list[Any]:
    """The values the grid sampler enumerates for `param` (in a stable order)."""
    if param.is_categorical:
        return param.values
    if param.grid_points is None:
        raise ValueError("a range needs grid_points to be enumerated")
    low, high = param.bounds
    n = param.grid_points
    if param.kind == "loguniform" or (param.kind == "int" and param.log):
        raw = [
            math.exp(math.log(low) + i * (math.log(high) - math.log(low)) / (n - 1))
            for i in range(n)
        ]
    else:
        raw = [low + i * (high - low) / (n - 1) for i in range(n)]
    if param.kind == "int":
        return sorted({_snap_int(param, x) for x in raw})
    if param.step is not None:
        raw = [low + round((x - low) / param.step) * param.step for x in raw]
        return sorted({min(max(_clean(x), low), high) for x in raw})
    return [min(max(_clean(x), low), high) for x in raw]


def is_active(param: Param, config: Mapping[str, Any]) -> bool:
    """Whether a (possibly conditional) parameter belongs in `config`, given its parents."""
    if not param.when:
        return True
    return all(
        parent in config
        and any(type(config[parent]) is type(v) and config[parent] == v for v in values)
        for parent, values in param.when.items()
    )


def topological_order(space: Mapping[str, Param]) -> list[str]:
    """Names ordered so that every parent comes before its children (stable otherwise).

    Assumes `check_space` found no cycle; a cycle raises ValueError. Iterative, so a long
    chain of conditions cannot exhaust the stack.
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def parents(name: str) -> Iterator[str]:
        return (p for p in space[name].when or {} if p in space)

    for root in space:
        if state.get(root) == 2:
            continue
        state[root] = 1
        stack = [(root, parents(root))]
        while stack:
            name, pending = stack[-1]
            for parent in pending:
                if state.get(parent) == 2:
                    continue
                if state.get(parent) == 1:
                    raise ValueError(f"condition cycle through {parent}")
                state[parent] = 1
                stack.append((parent, parents(parent)))
                break
            else:
                stack.pop()
                state[name] = 2
                order.append(name)
    return order


def _key(value: Any) -> tuple[type, Any]:
    # Listed values match by type and value: True is not 1, 1 is not 1.0 (as `contains`).
    return (type(value), value)


def check_space(space: Mapping[str, Param], prefix: str = "space") -> list[FieldError]:
    """Problems that involve several parameters: unknown parents, impossible values, cycles.

    Linear in the size of the space: a parent's listed values are looked up in a set.
    """
    errors: list[FieldError] = []
    listed: dict[str, set[tuple[type, Any]]] = {}
    for name, param in space.items():
        check_budget()
        if len(errors) >= MAX_ERRORS:
            break
        for parent, values in (param.when or {}).items():
            where = f"{prefix}.{name}.when.{parent}"
            if parent == name:
                errors.append(FieldError(where, "a parameter cannot depend on itself"))
            elif parent not in space:
                errors.append(FieldError(where, "no such parameter in the space"))
            else:
                target = space[parent]
                if target.is_categorical:
                    if parent not in listed:
                        listed[parent] = {_key(v) for v in target.values}
                    bad = [v for v in values if _key(v) not in listed[parent]]
                else:
                    bad = [v for v in values if not target.contains(v)]
                if bad:
                    shown = ", ".join(map(repr, bad[:5])) + (
                        f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
                    )
                    errors.append(FieldError(where, f"{parent} never takes {shown}"))
    if not errors:
        try:
            topological_order(space)
        except ValueError as exc:
            errors.append(FieldError(prefix, f"conditions form a cycle ({exc})"))
    return errors


def sample(space: Mapping[str, Param], rng: random.Random) -> dict[str, Any]:
    """Draw one config: parents first, conditional parameters only when active."""
    config: dict[str, Any] = {}
    for name in topological_order(space):
        param = space[name]
        if is_active(param, config):
            config[name] = sample_value(param, rng)
    return config


def expand_grid(space: Mapping[str, Param]) -> Iterator[dict[str, Any]]:
    """Every config of the grid, each exactly once, honoring conditions.

    A conditional parameter multiplies only the branch where it is active, so
    `{optimizer: [sgd, momentum], momentum: {grid: [0.5, 0.9], when: …momentum}}`
    gives 3 configs, not 4. Order is deterministic (the space's order, values as listed).
    """
    order = topological_order(space)

    def walk(i: int, config: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(order):
            yield dict(config)
            return
        name = order[i]
        param = space[name]
        if not is_active(param, config):
            yield from walk(i + 1, config)
            return
        for value in grid_values(param):
            config[name] = value
            yield from walk(i + 1, config)
        del config[name]

    yield from walk(0, {})


def grid_size(space: Mapping[str, Param], limit: int | None = None) -> int:
    """How many configs `expand_grid` yields — counted by arithmetic, never by enumerating
    them; at most `limit + 1` is returned once the count passes `limit`.

    Parameters in no condition multiply the count. A parameter whose only condition is on
    one parent, and that no other parameter reads, is folded into that parent: each parent
    value weighs the product of the sizes of the folded children it activates. The other
    conditions are counted in topological order over the distinct assignments of parent
    value *classes* (values that no remaining condition tells apart) still to be read,
    dropping a parent after its last reader. The count never decreases along the way, so
    passing `limit` early is final. Linear in the space for stars of conditions (the usual
    optimizer → momentum shape) and for chains.
    """
    cap = math.inf if limit is None else limit + 1
    order = topological_order(space)
    readers: dict[str, list[str]] = defaultdict(list)
    for name in order:
        for parent in space[name].when or {}:
            if parent in space:
                readers[parent].append(name)
    # A folded child: read by no one, and its one condition is on a parameter of the space.
    folded: dict[str, list[str]] = defaultdict(list)  # parent -> its folded children
    for name in order:
        when = space[name].when or {}
        if name not in readers and len(when) == 1 and (parent := next(iter(when))) in space:
            folded[parent].append(name)
    skipped = {child for children in folded.values() for child in children}
    readers = {p: [r for r in names if r not in skipped] for p, names in readers.items()}
    last_reader = {parent: names[-1] for parent, names in readers.items() if names}
    classes: dict[str, list[int]] = {}  # the weight of each class of a parent's values
    member: dict[str, dict[str, set[int]]] = {}  # per parent and reader: classes accepted
    states: dict[tuple[tuple[str, int], ...], int] = {(): 1}
    for name in order:
        if name in skipped:
            continue
        check_budget()
        if name in readers or name in folded:
            weights, accepted = _value_classes(
                space, name, readers.get(name, []), folded.get(name, []), cap
            )
            if name in last_reader:
                classes[name], member[name] = weights, accepted
            factor = sum(weights)
        else:
            factor = len(grid_values(space[name]))
        parents = list(space[name].when or {})
        if not parents:  # present in every config: a plain multiplication
            if name in classes:
                states = {
                    (*assignment, (name, cls)): count * weight
                    for assignment, count in states.items()
                    for cls, weight in enumerate(classes[name])
                }
            else:
                states = {assignment: count * factor for assignment, count in states.items()}
            if sum(states.values()) >= cap:
                return int(cap)
            continue
        merged: dict[tuple[tuple[str, int], ...], int] = defaultdict(int)
        for assignment, count in states.items():
            known = dict(assignment)
            active = all(p in member and known.get(p, -1) in member[p][name] for p in parents)
            if not active:
                inactive = -1 if name in classes else None
                merged[_drop(assignment, name, inactive, last_reader)] += count
            elif name in classes:
                for cls, weight in enumerate(classes[name]):
                    merged[_drop(assignment, name, cls, last_reader)] += count * weight
            else:
                merged[_drop(assignment, name, None, last_reader)] += count * factor
        states = merged
        total = sum(states.values())
        if total >= cap:
            return int(cap)
    return sum(states.values())


def _value_classes(
    space: Mapping[str, Param],
    parent: str,
    names: list[str],
    children: list[str],
    cap: float,
) -> tuple[list[int], dict[str, set[int]]]:
    """`parent`'s grid values grouped into classes that the conditions of `names` cannot
    tell apart: each class's weight (its values, each counting the product of the sizes of
    the folded `children` it activates, capped at `cap`), and for each of `names` the
    classes its condition accepts. Linear in the values listed."""
    values = grid_values(space[parent])
    index: dict[tuple[type, Any], list[int]] = defaultdict(list)
    for i, value in enumerate(values):
        index[_key(value)].append(i)

    def accepted_by(name: str) -> Iterator[int]:
        for wanted in dict.fromkeys(map(_key, (space[name].when or {})[parent])):
            yield from index.get(wanted, ())

    multiplier = [1] * len(values)
    for child in children:
        size = len(grid_values(space[child]))
        for i in accepted_by(child):
            multiplier[i] = int(min(multiplier[i] * size, cap))
    signature: list[list[int]] = [[] for _ in values]
    for r, name in enumerate(names):
        for i in accepted_by(name):
            signature[i].append(r)
    ids: dict[tuple[int, ...], int] = {}
    weights: list[int] = []
    accepted: dict[str, set[int]] = {name: set() for name in names}
    for i, sig in enumerate(signature):
        key = tuple(sig)
        if key not in ids:
            ids[key] = len(weights)
            weights.append(0)
            for r in key:
                accepted[names[r]].add(ids[key])
        weights[ids[key]] = int(min(weights[ids[key]] + multiplier[i], cap))
    return weights, accepted


def _drop(
    assignment: tuple[tuple[str, int], ...],
    name: str,
    cls: int | None,
    last_reader: Mapping[str, str],
) -> tuple[tuple[str, int], ...]:
    """`assignment` minus the parents whose last reader is `name`, plus `name`'s class if
    a later parameter reads it (`cls` is None if none does)."""
    kept = tuple(item for item in assignment if last_reader[item[0]] != name)
    return kept if cls is None else (*kept, (name, cls))


def parse_space(data: Mapping[str, Any]) -> Space:
    """Parse a YAML/JSON mapping into a space (raises pydantic.ValidationError)."""
    return {name: Param.model_validate(value) for name, value in data.items()}


def dump_space(space: Mapping[str, Param]) -> dict[str, Any]:
    """The YAML form of a space."""
    return {name: param.dump() for name, param in space.items()}


def active_names(space: Mapping[str, Param], config: Mapping[str, Any]) -> Sequence[str]:
    """The parameters of `space` that are active in `config` (in topological order)."""
    return [n for n in topological_order(space) if n in config]
