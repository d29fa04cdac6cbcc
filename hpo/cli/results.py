"""Commands that read results, from a database (--db) or from a server (--server): list
studies and trials, show the best trial, export a study."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hpo.cli.common import (
    DbOption,
    JsonOption,
    ServerOption,
    TokenOption,
    connect,
    open_repo,
    user_errors,
)
from hpo.cli.render import (
    Remote,
    err,
    fail,
    for_terminal,
    literal,
    print_best,
    print_json,
    print_pareto,
    remote_studies_table,
    remote_study,
    show,
    studies_table,
    trials_table,
)


def studies(
    db: DbOption = None,
    as_json: JsonOption = False,
    limit: int = 50,
    offset: int = 0,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """List studies, newest first."""
    if server and not db:
        with connect(server, token) as client:
            page = client.studies(limit=limit, offset=offset)
        if as_json:
            print_json(page["data"])
        else:
            remote_studies_table(page["data"])
        return
    with user_errors():
        repo = open_repo(db)
        rows = repo.list_studies(limit=limit, offset=offset)
        if as_json:
            from hpo.documents import study_document

            print_json([study_document(repo, s) for s in rows])
            return
        studies_table(rows)


def trials(
    study_id: Annotated[int, typer.Argument(metavar="STUDY_ID")],
    db: DbOption = None,
    as_json: JsonOption = False,
    sort: Annotated[
        str | None, typer.Option(help="number, best_value, epochs_run, param:NAME or a metric.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="running, completed, pruned or failed.")
    ] = None,
    limit: int = 100,
    offset: int = 0,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """List the trials of a study (paged; best first with --sort best_value)."""
    from hpo.documents import trial_document

    if server and not db:
        with connect(server, token) as client:
            remote = client.study(study_id)
            page = client.trials(study_id, sort=sort, status=status, limit=limit, offset=offset)
        if as_json:
            print_json(page["data"])
        else:
            trials_table(
                [Remote(t) for t in page["data"]],
                remote_study(remote),
                title=f"trials of study {study_id}",
            )
        return
    with user_errors():
        repo = open_repo(db)
        study = repo.get_study(study_id)
        try:
            rows = repo.list_trials(study_id, status=status, sort=sort, limit=limit, offset=offset)
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        print_json([trial_document(t) for t in rows])
    else:
        trials_table(rows, study, title=f"trials of study {study_id}")


def best(
    study_id: Annotated[int, typer.Argument(metavar="STUDY_ID")],
    db: DbOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Also write the best trial's delivered model (state_dict and config, "
            "torch.save) to this file.",
        ),
    ] = None,
) -> None:
    """The best trial of a study and its configuration; for several objectives, the
    Pareto set (trials no other beats on every objective)."""
    from hpo.documents import best_document, pareto_document, spec_objectives, value_label

    if server and not db:
        if weights is not None:
            fail("--weights reads the artifact store: use it with --db, not --server", code=2)
        with connect(server, token) as client:
            study_doc = client.study(study_id)
            several = len(spec_objectives(study_doc.get("spec") or {})) > 1
            found = client.pareto(study_id) if several else client.best(study_id)
        if as_json:
            print_json(found)
        elif several:
            print_pareto(found)
        else:
            print_best(Remote(found), str(found.get("value_label", "value")))
        return
    with user_errors():
        repo = open_repo(db)
        study = repo.get_study(study_id)
        if len(spec_objectives(study.spec)) > 1:
            pareto = pareto_document(study, repo.pareto_trials(study_id), db)
            if as_json:
                print_json(pareto)
            elif not pareto["pareto"]:
                fail(f"study {study_id} has no completed trial with every objective finite", code=1)
            else:
                print_pareto(pareto)
            return
        trial = repo.best_trial(study_id)
    if trial is None:
        fail(
            f"study {study_id} has no finished trial with a finite {study.objective_metric}", code=1
        )
    document = best_document(study, trial, db)
    if weights is not None:
        from hpo.weights import trial_weights

        with user_errors():
            data = trial_weights(repo, study_id, trial.number)
        try:
            weights.write_bytes(data)
        except OSError as exc:
            fail(f"--weights: cannot write {weights}: {exc.strerror or exc}")
        document["weights"] = str(weights)
    if as_json:
        print_json(document)
        return
    print_best(trial, value_label(study))
    if weights is not None:
        show(f"weights of trial {trial.number}: {weights}")
    show(f"reproduce: {literal(document['reproduce'])}")


def export(
    study_id: Annotated[int, typer.Argument(metavar="STUDY_ID")],
    db: DbOption = None,
    format: Annotated[
        str, typer.Option("--format", help="csv or json (to stdout or --output).")
    ] = "json",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
    optuna_storage: Annotated[
        str | None,
        typer.Option("--optuna-storage", help="Write an Optuna study to this storage URL."),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Export a study: CSV (one row per trial), JSON (trials with metric histories), or Optuna."""
    from hpo import export as exporter

    if server and not db:
        if optuna_storage:
            fail("--optuna-storage reads the database directly; give --db instead of --server")
        if format not in ("csv", "json"):
            fail(f"--format: must be csv or json, not {format!r}")
        target = output.open("w", newline="") if output else for_terminal(sys.stdout)
        try:
            with connect(server, token) as client:
                client.export(study_id, format, target)
        finally:
            if output:
                target.close()
            else:
                target.flush()
        return
    with user_errors():
        repo = open_repo(db)
        study = repo.get_study(study_id)
        if optuna_storage:
            name = exporter.to_optuna(repo, study, optuna_storage)
            show(f"wrote Optuna study '{name}' to {optuna_storage}", console=err)
            return
        if format not in ("csv", "json"):
            fail(f"--format: must be csv or json, not {format!r}")
        stream = output.open("w", newline="") if output else for_terminal(sys.stdout)
        try:
            if format == "csv":
                exporter.to_csv(repo, study, stream)
            else:
                exporter.to_json(repo, study, stream)
        finally:
            if output:
                stream.close()
            else:
                stream.flush()
