"""How the `hpo` command prints: the consoles, JSON documents, numbers, tables of studies
and trials (from the database or from a server), and the error line every command ends
with when the user can fix something.

Everything printed here is literal text. Study names, configs, errors and server
messages come from whoever submitted them, so nothing is read as Rich markup
(``[link=…]``), emoji codes or highlighting, and every unprintable character — ESC, NUL,
the right-to-left override U+202E, line separators — is shown escaped (`literal`). Our
own styling is applied to our own words only, as `Text` styles.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, NoReturn, cast

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Piped output (a log, CI) has no terminal width; tables would shrink to 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def literal(value: Any, *, newlines: bool = False) -> str:
    """`value` as text safe for a terminal: every character Python deems unprintable
    (Unicode's "Other" and "Separator" classes but the space: control, format and
    private-use characters, line separators) is written as its escape (``\\x1b``,
    ``\\u202e``); `newlines` keeps ``\\n`` for multi-line text. Idempotent."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (newlines and c == "\n") else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def show(message: str, *, console: Console = out, style: str | None = None) -> None:
    """Print `message` (newlines kept) as literal text."""
    console.print(Text(literal(message, newlines=True), style=style or ""), soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(Text("error: ", style="bold red") + Text(literal(message, newlines=True)))
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    # json.dumps escapes every control and non-ASCII character (ensure_ascii).
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return literal(value)


def print_yaml(data: Any) -> None:
    show(yaml.safe_dump(data, sort_keys=True).rstrip())


def epoch_printer(
    history: list[dict[str, float]], *, quiet: bool
) -> Callable[[Mapping[str, Any]], None]:
    columns: list[str] = []

    def report(metrics: Mapping[str, Any]) -> None:
        row = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        history.append(row)
        if quiet:
            return
        if not columns:
            columns.extend(row)
            print("  ".join(f"{literal(c):>12}" for c in columns), flush=True)
        print("  ".join(f"{fmt(row.get(c)):>12}" for c in columns), flush=True)

    return report


def _table(title: str, columns: list[str], *, right: frozenset[str] = frozenset()) -> Table:
    table = Table(title=Text(literal(title)))
    for col in columns:
        table.add_column(Text(literal(col)), justify="right" if col in right else "left")
    return table


def _add_row(table: Table, *cells: str) -> None:
    table.add_row(*(Text(literal(cell)) for cell in cells))


def trial_value(trial: Any) -> Any:
    """A trial's one value, from a repository record (`objective_value`) or a server's
    document (`value`)."""
    value = getattr(trial, "objective_value", None)
    return getattr(trial, "value", None) if value is None else value


def trials_table(trials: list[Any], study: Any, *, title: str) -> None:
    from hpo.documents import value_label

    space = list(study.spec.get("space", {}))
    columns = ["#", "status", "epochs", value_label(study), "best epoch", *space]
    table = _table(title, columns, right=frozenset(columns) - {"status"})
    for t in trials:
        _add_row(
            table,
            str(t.number),
            t.status,
            str(t.epochs_run),
            fmt(trial_value(t)),
            fmt(t.best_value),
            *(fmt(t.config.get(p)) for p in space),
        )
    out.print(table)


def studies_table(rows: list[Any]) -> None:
    table = _table("studies", ["id", "name", "status", "strategy", "objective", "best", "created"])
    for s in rows:
        strat = s.spec.get("strategy", {})
        _add_row(
            table,
            str(s.id),
            s.name,
            s.status,
            f"{strat.get('sampler')}+{strat.get('scheduler')}",
            f"{s.objective_metric} ({s.objective_mode})",
            fmt(s.best_value),
            s.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


def trials_bar() -> Any:
    """The live progress bar of `hpo run` and `hpo watch` on stderr: finished of total,
    a detail line (shown literally: it carries text from the server) and elapsed time."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    return Bar(
        TextColumn("[bold]trials"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}", markup=False),
        TimeElapsedColumn(),
        console=err,
    )


def print_best(trial: Any, label: str) -> None:
    """The best trial's one value, labelled ("val_accuracy, last epoch"), then its config."""
    status = literal(trial.status)
    show(
        f"best trial #{trial.number} ({status}): {literal(label)} = {fmt(trial_value(trial))}"
        f"  (best epoch: {fmt(trial.best_value)})"
    )
    test = (getattr(trial, "provenance", None) or {}).get("test_metrics")
    if isinstance(test, dict) and test:
        shown = ", ".join(f"{literal(k)} {fmt(v)}" for k, v in sorted(test.items()))
        show(f"held-out test split (never used for selection): {shown}")
    print_yaml(trial.config)


def print_pareto(document: Mapping[str, Any]) -> None:
    """A multi-objective study's Pareto set (`hpo.documents.pareto_document`): one row
    per trial with its value of each objective and its searched params."""
    objectives = [f"{o['metric']} ({o['mode']})" for o in document["objectives"]]
    trials = document["pareto"]
    searched = list(document.get("params") or [])
    columns = ["#", *objectives, *searched]
    table = _table(f"Pareto set: {len(trials)} trial(s)", columns, right=frozenset(columns))
    for t in trials:
        values = t.get("values") or [None] * len(objectives)
        _add_row(
            table,
            str(t["number"]),
            *(fmt(v) for v in values),
            *(fmt(t["config"].get(p)) for p in searched),
        )
    out.print(table)


def for_terminal(stream: IO[str]) -> IO[str]:
    """`stream` itself if it is a file or a pipe (the data stays exact); if it is a
    terminal, a stream that writes everything as `literal` text (CSV's ``\r\n`` as
    ``\n``)."""
    return cast(IO[str], _TerminalWriter(stream)) if stream.isatty() else stream


class _TerminalWriter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.pending = ""  # a "\r" that may be the first half of a "\r\n" split by a chunk

    def write(self, text: str) -> int:
        text, self.pending = self.pending + text, ""
        if text.endswith("\r"):
            text, self.pending = text[:-1], "\r"
        return self.stream.write(literal(text.replace("\r\n", "\n"), newlines=True))

    def flush(self) -> None:
        if self.pending:
            self.stream.write(literal(self.pending))
            self.pending = ""
        self.stream.flush()


# --- documents from a server ----------------------------------------------------------------


class Remote:
    """A JSON document from the server read with attribute access, so the tables and
    printers written for repository records show it unchanged."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.__dict__.update(document)


def remote_study(document: Mapping[str, Any]) -> Remote:
    return Remote({**document, "objective_metric": document["objective"]["metric"]})


def remote_studies_table(rows: list[dict[str, Any]]) -> None:
    columns = ["id", "name", "owner", "status", "strategy", "objective", "best", "created"]
    table = _table("studies", columns)
    for s in rows:
        strat, objective = s["strategy"], s["objective"]
        _add_row(
            table,
            str(s["id"]),
            s["name"],
            fmt(s["owner"]),
            s["status"],
            f"{strat['sampler']}+{strat['scheduler']}",
            f"{objective['metric']} ({objective['mode']})",
            fmt(s["best_value"]),
            str(s["created_at"])[:16].replace("T", " "),
        )
    out.print(table)
