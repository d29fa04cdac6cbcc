"""Whatever a server (or a database others write to) holds reaches the terminal as literal
text: Rich markup is shown, not interpreted, and control characters (ESC, NUL, the
right-to-left override U+202E…) are escaped (issue 12, item 8). Real HTTP, live server."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.app import create_app
from hpo import service
from hpo.cli import app
from hpo.cli.render import literal
from hpo.config import Settings
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow
from tests.api.support import BRANIN_SPEC, live_server

runner = CliRunner()

MARKUP = "[bold red]pwn[/bold red]"
LINK = "[link=http://evil.example]x[/link]"
# NUL too where the database can hold it (PostgreSQL text cannot).
CONTROLS = "\x1b[2J\u202e\x07"
RAW = ("\x1b", "\x00", "\u202e", "\x07")


@pytest.fixture(scope="module")
def seeded(backend_url: str) -> tuple[str, int, int]:
    """A failed study and a running one whose name, error, metric history and trial
    config carry markup and control characters (written as a hostile client could)."""
    controls = CONTROLS + ("\x00" if backend_url.startswith("sqlite") else "")
    with Repository(backend_url) as repo:
        spec = load_spec({**BRANIN_SPEC, "name": MARKUP + controls})
        failed = service.submit_study(repo, spec, owner=None)
        repo.set_study_status(failed.id, "running")
        trial = repo.create_trial(
            failed.id,
            config={"x1": LINK + controls, "x2": 1.0},
            seed=0,
            ray_trial_id=None,
            provenance={},
        )
        repo.record_results([ResultRow(trial.id, 1, {"value": 1.0}, 1.0)])
        repo.finish_trial(trial.id, "completed")
        repo.set_study_status(failed.id, "failed", error=f"boom {MARKUP}\n{controls}")
        running = service.submit_study(
            repo, load_spec({**BRANIN_SPEC, "name": LINK + controls}), owner=None
        )
    return backend_url, failed.id, running.id


@pytest.fixture(scope="module")
def server(seeded: tuple[str, int, int]) -> Iterator[str]:
    settings = Settings(allowed_modules=("hpo.examples",))
    with live_server(create_app(seeded[0], settings=settings)) as url:
        yield url


def _literal_only(result: Result, *shown: str, escapes: bool = True) -> str:
    """The output holds none of the raw characters, shows `shown` verbatim, and (with
    `escapes`) shows the escapes of ESC and U+202E (YAML writes its own: ``\\e``)."""
    text = result.stdout + result.stderr
    for raw in RAW:
        assert raw not in text, (raw, text)
    if escapes:
        assert "\\x1b" in text and "\\u202e" in text, text
    for value in shown:
        assert value in text, (value, text)
    return text


def test_remote_tables_show_markup_and_escape_controls(
    server: str, seeded: tuple[str, int, int]
) -> None:
    _, failed, _ = seeded
    studies = runner.invoke(app, ["studies", "--server", server])
    assert studies.exit_code == 0, studies.output
    _literal_only(studies, MARKUP, LINK)
    trials = runner.invoke(app, ["trials", str(failed), "--server", server])
    assert trials.exit_code == 0, trials.output
    _literal_only(trials, LINK)


def test_remote_best_status_and_watch_are_literal(
    server: str, seeded: tuple[str, int, int]
) -> None:
    _, failed, _ = seeded
    best = runner.invoke(app, ["best", str(failed), "--server", server])
    assert best.exit_code == 0, best.output
    _literal_only(best, "[link=http://evil.example]", escapes=False)
    status = runner.invoke(app, ["status", str(failed), "--server", server])
    assert status.exit_code == 0, status.output
    _literal_only(status, MARKUP)
    watched = runner.invoke(app, ["watch", str(failed), "--server", server])
    assert watched.exit_code == 1
    _literal_only(watched, MARKUP)


def test_remote_cancel_and_server_messages_are_literal(
    server: str, seeded: tuple[str, int, int], tmp_path: Path
) -> None:
    _, _, running = seeded
    cancelled = runner.invoke(app, ["cancel", str(running), "--server", server])
    assert cancelled.exit_code == 0, cancelled.output
    # The server's refusal echoes what it was sent; the CLI prints that literally too.
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: x\nstrategy: '{MARKUP}\\e[2J\\0\\u202e'\n", encoding="utf-8")
    refused = runner.invoke(app, ["submit", str(spec), "--server", server])
    assert refused.exit_code == 2
    text = refused.stdout + refused.stderr
    assert MARKUP in text and "\x1b" not in text and "\u202e" not in text, text


def test_local_tables_are_literal_too(seeded: tuple[str, int, int]) -> None:
    url, failed, _ = seeded
    studies = runner.invoke(app, ["studies", "--db", url])
    assert studies.exit_code == 0, studies.output
    _literal_only(studies, MARKUP, LINK)
    best = runner.invoke(app, ["best", str(failed), "--db", url])
    _literal_only(best, "[link=http://evil.example]", escapes=False)


def test_remote_csv_export_to_a_terminal_is_escaped(
    server: str, seeded: tuple[str, int, int], tmp_path: Path
) -> None:
    _, failed, _ = seeded
    out = tmp_path / "study.csv"
    exported = runner.invoke(
        app, ["export", str(failed), "--server", server, "--format", "csv", "-o", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    assert "\x1b" in out.read_text()  # a file keeps the data exactly
    shown = runner.invoke(app, ["export", str(failed), "--server", server, "--format", "csv"])
    assert shown.exit_code == 0
    # CliRunner's stdout is not a terminal: piped data stays exact as well.
    assert "\x1b" in shown.stdout
    # On a terminal (a real pseudo-terminal), the same export is escaped.
    on_tty = _on_a_terminal(
        [sys.executable, "-m", "hpo", "export", str(failed), "--server", server, "--format", "csv"]
    )
    assert "\x1b" not in on_tty and "\u202e" not in on_tty, on_tty
    assert "\\x1b[2J" in on_tty, on_tty


def _on_a_terminal(command: list[str]) -> str:
    main, attached = pty.openpty()
    proc = subprocess.Popen(command, stdout=attached, stderr=attached, stdin=subprocess.DEVNULL)
    os.close(attached)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(timeout=60) == 0, b"".join(chunks)
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain [b]text[/b]", "plain [b]text[/b]"),
        ("\x1b[31m", "\\x1b[31m"),
        ("a\x00b", "a\\x00b"),
        ("\u202eevil", "\\u202eevil"),
        ("tab\there", "tab\\x09here"),
        ("line\nbreak", "line\\x0abreak"),
        ("\u2028\u200b\x9b", "\\u2028\\u200b\\x9b"),
        ("caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),
    ],
)
def test_literal_escapes_exactly_the_unprintable(raw: str, shown: str) -> None:
    assert literal(raw) == shown
    assert literal(literal(raw)) == shown


def test_literal_may_keep_newlines() -> None:
    assert literal("a\nb\x1b", newlines=True) == "a\nb\\x1b"
