"""References to user code, ``package.module:function``: the one parser of them, the
allow-list check, and the one place that imports them.

The REST API, the CLI and the trial all go through `parse`, so what the API lets through
is exactly what a trial imports: there is no second, looser reading of the same string.
The grammar is strict: dotted ASCII Python identifiers, one colon, an identifier; no
whitespace, no empty segment, no dunder names (``os:system`` parses, ``" os:system"``,
``"os.:system"`` and ``"revmarker.-:f"`` do not)::

    >>> parse("hpo.examples.functions:branin")
    Reference(module='hpo.examples.functions', function='branin')

`load` checks the allow-list (when given one) on the parsed module name *before* any
import, so a module outside the list is never imported, not even to fail. Importing
``a.b`` runs ``a/__init__.py`` first: allowing ``a.b`` trusts ``a``'s package too.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Longest reference accepted: a dotted path longer than this is not a module anyone wrote.
MAX_LENGTH = 300
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*", re.ASCII)
_REFERENCE = re.compile(rf"(?P<module>{_MODULE.pattern}):(?P<function>{_IDENTIFIER})", re.ASCII)
# The same grammar for JSON Schema (ECMA-262 syntax: no named groups).
JSON_SCHEMA_PATTERN = rf"^{_MODULE.pattern}:{_IDENTIFIER}$"
FORM = "'package.module:function' (dotted Python identifiers, a colon, a function name)"


class InvalidReference(ValueError):
    """A string that is not a well-formed reference; the message says why."""


class NotAllowed(ImportError):
    """A well-formed reference to a module outside the allow-list (nothing was imported)."""


@dataclass(frozen=True)
class Reference:
    """A parsed ``module:function``: `module` is what would be imported."""

    module: str
    function: str

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"


def parse(text: object) -> Reference:
    """`text` as a `Reference`, or `InvalidReference` saying what is wrong with it."""
    if not isinstance(text, str):
        raise InvalidReference(f"must be a string {FORM}")
    if len(text) > MAX_LENGTH:
        raise InvalidReference(f"longer than {MAX_LENGTH} characters")
    match = _REFERENCE.fullmatch(text)
    if match is None:
        raise InvalidReference(f"{text!r} is not {FORM}")
    module, function = match["module"], match["function"]
    if any(_dunder(part) for part in (*module.split("."), function)):
        raise InvalidReference(f"{text!r}: names like __x__ are not allowed")
    return Reference(module, function)


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def is_module_name(text: str) -> bool:
    """Whether `text` is a dotted module name (the form of an allow-list entry)."""
    return len(text) <= MAX_LENGTH and _MODULE.fullmatch(text) is not None


def allowed(reference: Reference, modules: Sequence[str]) -> bool:
    """Whether `reference`'s module is one of `modules` or inside one of them
    (``pkg`` allows ``pkg`` and ``pkg.sub``, not ``pkg_evil``)."""
    return any(reference.module == m or reference.module.startswith(m + ".") for m in modules)


def check(text: object, modules: Sequence[str]) -> Reference:
    """The parsed reference if its module is allowed by `modules`; `InvalidReference` or
    `NotAllowed` otherwise. Imports nothing."""
    reference = parse(text)
    if not allowed(reference, modules):
        listed = ", ".join(modules) if modules else "none"
        raise NotAllowed(f"module '{reference.module}' is not allowed (allowed: {listed})")
    return reference


def load(text: object, *, modules: Sequence[str] | None = None) -> Callable[..., Any]:
    """Import the function `text` names. With `modules`, refuse (`NotAllowed`) any module
    outside them before importing anything. Every failure is an `ImportError` whose
    message says which part was wrong."""
    try:
        reference = parse(text) if modules is None else check(text, modules)
    except InvalidReference as exc:
        raise ImportError(str(exc)) from None
    try:
        module = importlib.import_module(reference.module)
    except ImportError as exc:
        raise ImportError(
            f"cannot import module '{reference.module}' of '{reference}': {exc}"
        ) from exc
    function = getattr(module, reference.function, None)
    if function is None:
        raise ImportError(f"module '{reference.module}' has no function '{reference.function}'")
    if not callable(function):
        raise ImportError(f"'{reference}' is not callable")
    return function  # type: ignore[no-any-return]
