"""How the `hpo` command prints: the consoles, JSON documents, numbers, tables of studies
and trials (from the database or from a server), and the error line every command ends
with when the user can fix something."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

# Piped output (a log, CI) has no terminal width; tables would shrink to 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


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
            print("  ".join(f"{c:>12}" for c in columns), flush=True)
        print("  ".join(f"{fmt(row.get(c)):>12}" for c in columns), flush=True)

    return report


def trials_table(trials: list[Any], study: Any, *, title: str) -> None:
    space = list(study.spec.get("space", {}))
    table = Table(title=title)
    for col in ["#", "status", "epochs", f"best {study.objective_metric}", *space]:
        table.add_column(col, justify="right" if col not in ("status",) else "left")
    for t in trials:
        table.add_row(
            str(t.number),
            t.status,
            str(t.epochs_run),
            fmt(t.best_value),
            *(fmt(t.config.get(p)) for p in space),
        )
    out.print(table)


def studies_table(rows: list[Any]) -> None:
    table = Table(title="studies")
    for col in ("id", "name", "status", "strategy", "objective", "best", "created"):
        table.add_column(col)
    for s in rows:
        strat = s.spec.get("strategy", {})
        table.add_row(
            str(s.id),
            s.name,
            s.status,
            f"{strat.get('sampler')}+{strat.get('scheduler')}",
            f"{s.objective_metric} ({s.objective_mode})",
            fmt(s.best_value),
            s.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


def print_best(trial: Any, label: str) -> None:
    """The best trial's one value, labelled ("val_accuracy, last epoch"), then its config."""
    value = getattr(trial, "value", None)
    if value is None:
        value = getattr(trial, "objective_value", None)
    out.print(
        f"best trial #{trial.number} ({trial.status}): {label} = {fmt(value)}"
        f"  (best epoch: {fmt(trial.best_value)})",
        highlight=False,
    )
    out.print(yaml.safe_dump(trial.config, sort_keys=True).rstrip(), highlight=False)


# --- documents from a server ----------------------------------------------------------------


class Remote:
    """A JSON document from the server read with attribute access, so the tables and
    printers written for repository records show it unchanged."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.__dict__.update(document)


def remote_study(document: Mapping[str, Any]) -> Remote:
    return Remote({**document, "objective_metric": document["objective"]["metric"]})


def remote_studies_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="studies")
    for col in ("id", "name", "owner", "status", "strategy", "objective", "best", "created"):
        table.add_column(col)
    for s in rows:
        strat, objective = s["strategy"], s["objective"]
        table.add_row(
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
