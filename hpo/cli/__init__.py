"""The `hpo` command line: train one trial, run a search, read results, export them.

Every command turns bad input into a message naming the field and the reason and exit
code 2; no command shows a traceback for something the user can fix.

The commands live by what they talk to: `local` (this machine: train, run, runner, db,
token), `results` (a database or a server: studies, trials, best, export), `server` (the
service: serve, submit, status, watch, cancel); `render` prints for all of them.
"""

from __future__ import annotations

import typer

from hpo.cli import local, results, server

app = typer.Typer(
    help="Hyperparameter search for PyTorch: every strategy on Ray Tune, every result in SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
token_app = typer.Typer(help="API tokens of the REST API.", no_args_is_help=True)

app.command()(local.train)
app.command()(local.run)
app.command()(results.studies)
app.command()(results.trials)
app.command()(results.best)
app.command()(results.export)
app.command()(server.serve)
app.command()(server.submit)
app.command()(server.status)
app.command()(server.watch)
app.command()(server.cancel)
db_app.command("upgrade")(local.db_upgrade)
app.command()(local.runner)
app.add_typer(token_app, name="token")
token_app.command("create")(local.token_create)


def main() -> None:  # pragma: no cover - console entry point
    app()
