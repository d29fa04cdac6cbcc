"""`hpo.references`: the one parser of ``module:function``, and the loaders of the trial
(user functions, user datasets) that never import a module the parser refused."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpo import references
from hpo.references import InvalidReference, NotAllowed, Reference, parse

# The forms that got past the old, looser readings (issue 12, item 1) and their cousins.
MALFORMED = [
    "revmarker.-:f",
    "os.:system",
    " os:system",
    "os:system ",
    "os:system\n",
    "os :system",
    "os: system",
    ".os:system",
    "os..path:join",
    "os:",
    ":system",
    "os",
    "os:system:x",
    "os:sys.tem",
    "os/path:join",
    "1os:system",
    "ｏs:system",  # fullwidth o: not ASCII
    "os:__class__",
    "__main__:f",
    "a" * 400 + ":f",
    "",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse(text)


@pytest.mark.parametrize("value", [None, 3, ["os:system"], b"os:system"])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidReference, match="must be a string"):
        parse(value)


def test_well_formed_references_split_at_the_colon() -> None:
    assert parse("hpo.examples.functions:branin") == Reference("hpo.examples.functions", "branin")
    assert parse("_private.mod2:_f1") == Reference("_private.mod2", "_f1")
    assert str(parse("a.b:c")) == "a.b:c"


def test_allow_list_matches_whole_dotted_segments() -> None:
    ref = parse("pkg.sub:f")
    assert references.allowed(ref, ["pkg"])
    assert references.allowed(ref, ["pkg.sub"])
    assert not references.allowed(ref, ["pkg.su"])
    assert not references.allowed(parse("pkg_evil:f"), ["pkg"])
    assert not references.allowed(ref, [])


def test_load_refuses_a_module_outside_the_list_without_importing_it() -> None:
    name = "tests.api.explosive"
    assert name not in sys.modules
    with pytest.raises(NotAllowed, match="not allowed"):
        references.load(f"{name}:fit", modules=["hpo.examples"])
    assert name not in sys.modules


def test_load_imports_an_allowed_function() -> None:
    from hpo.examples.functions import branin

    assert references.load("hpo.examples.functions:branin", modules=["hpo.examples"]) is branin
    assert references.load("hpo.examples.functions:branin") is branin
    with pytest.raises(ImportError, match="has no function 'nope'"):
        references.load("hpo.examples.functions:nope")


# A package in the working directory whose import leaves a marker: the process importing
# it proves the parser let the reference through.
_MARKER_PACKAGE = """\
from pathlib import Path
Path(__file__).resolve().parent.parent.joinpath("IMPORTED").write_text("revmarker ran")
def f(*args):
    return None
"""


@pytest.fixture
def marker_cwd(tmp_path: Path) -> Path:
    package = tmp_path / "revmarker"
    package.mkdir()
    (package / "__init__.py").write_text(_MARKER_PACKAGE)
    return tmp_path


def _run_in(cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    # `python -c` puts the working directory first on sys.path, as a trial process does
    # with the server's working directory.
    repo = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("reference", ["revmarker.-:f", "revmarker.:f", " revmarker:f"])
def test_the_trials_loaders_never_import_a_refused_reference(
    marker_cwd: Path, reference: str
) -> None:
    done = _run_in(
        marker_cwd,
        f"""
        from hpo.execution.trainables import load_function
        from hpo.training.data import _user_dataset
        for load in (load_function, lambda ref: _user_dataset(ref, {{}})):
            try:
                load({reference!r})
            except (ImportError, ValueError) as exc:
                print("refused:", exc)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("refused:") == 2, done.stdout
    assert not (marker_cwd / "IMPORTED").exists()


def test_the_marker_package_does_mark_when_imported(marker_cwd: Path) -> None:
    # The control: the same process and package, a well-formed reference.
    done = _run_in(
        marker_cwd,
        "from hpo.execution.trainables import load_function; load_function('revmarker:f')",
    )
    assert done.returncode == 0, done.stderr
    assert (marker_cwd / "IMPORTED").exists()
