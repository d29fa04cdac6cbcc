"""The `hpo` command line: train one trial, run a search, read results, export them.

Every command turns bad input into a message naming the field and the reason and exit
code 2; no command shows a traceback for something the user can fix.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from hpo.config import get_settings
from hpo.errors import SpecError

app = typer.Typer(
    help="Hyperparameter search for PyTorch: every strategy on Ray Tune, every result in SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# Piped output (a log, CI) has no terminal width; tables would shrink to 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: HPO_DATABASE_URL or sqlite:///./hpo.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="HPO_SERVER",
        help="Read from an hpo server (http://host:port) instead of a database.",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="HPO_TOKEN", help="API token for --server.", show_default=False),
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn errors a user can fix into a message and exit code 2."""
    from hpo.storage.errors import NotFoundError, SchemaOutdatedError, StorageError

    try:
        yield
    except SpecError as exc:
        lines = "\n".join(f"  {e}" for e in exc.errors)
        fail(f"invalid spec ({len(exc.errors)} problem{'s' * (len(exc.errors) > 1)}):\n{lines}")
    except (NotFoundError, SchemaOutdatedError) as exc:
        fail(str(exc))
    except StorageError as exc:
        fail(f"database: {exc}", code=1)


def _repo(db: str | None) -> Any:
    from hpo.storage.repository import Repository

    return Repository(db or get_settings().database_url)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


# --- hpo train ----------------------------------------------------------------------------


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--set {pair!r}: expected key=value")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            values[key.strip()] = raw
    return values


@app.command()
def train(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="A study spec (YAML/JSON).")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a hyperparameter: key=value (repeatable)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs (default: budget.max_epochs).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train one trial: the spec's fixed values, the --set values, defaults for the rest."""
    from hpo.spec import load_spec

    with _user_errors():
        spec = load_spec(spec_path)
    overrides = _parse_sets(set_ or [])
    if spec.trainable.builtin:
        _check_overrides(overrides)
    config = spec.base_config()
    config["seed"] = spec.strategy.seed or 0
    config.update(overrides)
    if epochs is not None:
        config["epochs"] = epochs
    history: list[dict[str, float]] = []
    report = _epoch_printer(history, quiet=as_json)
    if spec.trainable.function is not None:
        final = _train_function(spec.trainable.function, config, report, history)
    else:
        final = _train_builtin(config, report)
    if as_json:
        _print_json({**final, "config": config, "history": history})


def _check_overrides(values: Mapping[str, Any]) -> None:
    from hpo.training.config import VOCABULARY, validate_value

    problems = []
    for name, value in values.items():
        if name not in VOCABULARY:
            problems.append(f"  --set {name}: unknown hyperparameter (see README: Hyperparameters)")
        elif reason := validate_value(name, value):
            problems.append(f"  --set {name}={value!r}: {reason}")
    if problems:
        fail("invalid hyperparameters:\n" + "\n".join(problems))


def _train_builtin(
    config: dict[str, Any], report: Callable[[Mapping[str, Any]], None]
) -> dict[str, Any]:
    from pydantic import ValidationError

    from hpo.training.config import build_config
    from hpo.training.loop import train as run_training

    try:
        cfg = build_config(config)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'config'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        fail("invalid hyperparameters:\n" + "\n".join(lines))
    result = run_training(cfg, report)
    return {**result.final, "device": result.device, "stopped_early": result.stopped_early}


def _train_function(
    path: str,
    config: dict[str, Any],
    report: Callable[[Mapping[str, Any]], None],
    history: list[dict[str, float]],
) -> dict[str, Any]:
    from hpo.execution.trainables import load_function

    try:
        fn = load_function(path)
    except ImportError as exc:
        fail(f"trainable.function: {exc}")
    fn(config, report)
    return dict(history[-1]) if history else {}


def _epoch_printer(
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
        print("  ".join(f"{_fmt(row.get(c)):>12}" for c in columns), flush=True)

    return report


# --- hpo run ------------------------------------------------------------------------------


@app.command()
def run(
    spec_path: Annotated[
        Path | None, typer.Argument(metavar="SPEC", help="A study spec (omit with --resume).")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="grid, random, tpe/bayes, gp, hyperband, asha, bohb.")
    ] = None,
    sampler: Annotated[str | None, typer.Option(help="grid, random, tpe, gp.")] = None,
    scheduler: Annotated[str | None, typer.Option(help="fifo, hyperband, asha, median.")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Trials to finish.")] = None,
    name: Annotated[str | None, typer.Option(help="Study name (default: the spec's).")] = None,
    db: DbOption = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster (default: HPO_RAY_ADDRESS, else local)."),
    ] = None,
    resume: Annotated[
        int | None, typer.Option(help="Continue study STUDY_ID where it stopped.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a whole search on Ray Tune, every trial and metric written to the database."""
    from hpo.spec import apply_overrides, load_spec
    from hpo.storage.errors import LeaseHeldError

    if (spec_path is None) == (resume is None):
        fail("give a SPEC to start a study, or --resume STUDY_ID to continue one")
    if strategy and (sampler or scheduler):
        fail(
            "--strategy names a sampler and a scheduler; give it or --sampler/--scheduler, not both"
        )
    with _user_errors():
        repo = _repo(db)
        if resume is not None:
            study = repo.get_study(resume)
            if study.status == "completed":
                fail(f"study {resume} is already completed")
            study_id = study.id
        else:
            assert spec_path is not None
            spec = apply_overrides(
                load_spec(spec_path),
                strategy=strategy,
                sampler=sampler,
                scheduler=scheduler,
                trials=trials,
                name=name,
            )
            if spec.trainable.function is not None:
                # Fail here, not once per trial on the cluster.
                from hpo.execution.trainables import load_function

                try:
                    load_function(spec.trainable.function)
                except ImportError as exc:
                    fail(f"trainable.function: {exc}")
            from hpo.execution.driver import create_claimed_study

            # Created already claimed by this process: no runner can take it meanwhile.
            study_id = create_claimed_study(repo, spec).id
        if not as_json:
            err.print(
                f"study {study_id}: {repo.get_study(study_id).name}  (db: {repo.url})",
                highlight=False,
            )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            final = _run_with_progress(
                repo, study_id, ray_address or get_settings().ray_address, quiet=as_json
            )
        except KeyboardInterrupt:
            fail(f"interrupted; continue with: hpo run --resume {study_id}", code=130)
        except SpecError:
            raise
        except LeaseHeldError as exc:
            fail(str(exc), code=1)
        except Exception as exc:
            fail(f"study {study_id} failed: {type(exc).__name__}: {exc}", code=1)
    _show_result(repo, final, as_json=as_json)


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM ends a run the way Ctrl-C does: cleanly, leaving the study resumable.
    raise KeyboardInterrupt


def _run_with_progress(repo: Any, study_id: int, ray_address: str | None, *, quiet: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    from hpo.execution.driver import run_study
    from hpo.execution.recorder import Progress
    from hpo.spec import load_spec

    spec = load_spec(repo.get_study(study_id).spec)
    progress = Progress(target=spec.budget.trials, mode=spec.objective.mode)
    if quiet:
        return run_study(repo, study_id, ray_address=ray_address, progress=progress)
    bar = Bar(
        TextColumn("[bold]trials"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    task = bar.add_task("trials", total=spec.budget.trials, detail="")

    def refresh() -> None:
        c = progress.counts
        done = c["completed"] + c["pruned"]
        best = _fmt(progress.best) if progress.best is not None else "-"
        bar.update(
            task,
            completed=done,
            detail=f"run {c['running']} pruned {c['pruned']} failed {c['failed']} "
            f"best {spec.objective.metric}={best}",
        )

    with bar:
        final = run_study(
            repo, study_id, ray_address=ray_address, progress=progress, on_step=refresh
        )
        refresh()
    return final


def _show_result(repo: Any, study: Any, *, as_json: bool) -> None:
    from hpo.documents import study_document

    if as_json:
        _print_json(study_document(repo, study))
        return
    top = repo.list_trials(study.id, sort="best_value", limit=10)
    _trials_table(top, study, title=f"top trials of study {study.id} ({study.status})")
    best = repo.best_trial(study.id)
    if best is None:
        out.print("no trial finished with a finite objective value")
        return
    out.print(
        f"\n[bold]best trial #{best.number}[/]: {study.objective_metric} = {_fmt(best.best_value)}",
        highlight=False,
    )
    out.print(yaml.safe_dump(best.config, sort_keys=True).rstrip(), highlight=False)


def _trials_table(trials: list[Any], study: Any, *, title: str) -> None:
    space = list(study.spec.get("space", {}))
    table = Table(title=title)
    for col in ["#", "status", "epochs", f"best {study.objective_metric}", *space]:
        table.add_column(col, justify="right" if col not in ("status",) else "left")
    for t in trials:
        table.add_row(
            str(t.number),
            t.status,
            str(t.epochs_run),
            _fmt(t.best_value),
            *(_fmt(t.config.get(p)) for p in space),
        )
    out.print(table)


# --- reading results ----------------------------------------------------------------------


@app.command()
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
        with _client(server, token) as client:
            page = client.studies(limit=limit, offset=offset)
        if as_json:
            _print_json(page["data"])
        else:
            _remote_studies_table(page["data"])
        return
    with _user_errors():
        repo = _repo(db)
        rows = repo.list_studies(limit=limit, offset=offset)
        if as_json:
            from hpo.documents import study_document

            _print_json([study_document(repo, s) for s in rows])
            return
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
                _fmt(s.best_value),
                s.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        out.print(table)


@app.command()
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
        with _client(server, token) as client:
            remote = client.study(study_id)
            page = client.trials(study_id, sort=sort, status=status, limit=limit, offset=offset)
        if as_json:
            _print_json(page["data"])
        else:
            _trials_table(
                [_Remote(t) for t in page["data"]],
                _remote_study(remote),
                title=f"trials of study {study_id}",
            )
        return
    with _user_errors():
        repo = _repo(db)
        study = repo.get_study(study_id)
        try:
            rows = repo.list_trials(study_id, status=status, sort=sort, limit=limit, offset=offset)
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        _print_json([trial_document(t) for t in rows])
    else:
        _trials_table(rows, study, title=f"trials of study {study_id}")


@app.command()
def best(
    study_id: Annotated[int, typer.Argument(metavar="STUDY_ID")],
    db: DbOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The best trial of a study and its configuration."""
    from hpo.documents import trial_document

    if server and not db:
        with _client(server, token) as client:
            metric = client.study(study_id)["objective"]["metric"]
            found = client.best(study_id)
        if as_json:
            _print_json(found)
        else:
            _print_best(_Remote(found), metric)
        return
    with _user_errors():
        repo = _repo(db)
        study = repo.get_study(study_id)
        trial = repo.best_trial(study_id)
    if trial is None:
        fail(
            f"study {study_id} has no finished trial with a finite {study.objective_metric}", code=1
        )
    if as_json:
        _print_json(trial_document(trial))
        return
    _print_best(trial, study.objective_metric)


def _print_best(trial: Any, metric: str) -> None:
    out.print(
        f"best trial #{trial.number} ({trial.status}): {metric} = {_fmt(trial.best_value)}",
        highlight=False,
    )
    out.print(yaml.safe_dump(trial.config, sort_keys=True).rstrip(), highlight=False)


@app.command()
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
        target = output.open("w", newline="") if output else sys.stdout
        try:
            with _client(server, token) as client:
                client.export(study_id, format, target)
        finally:
            if output:
                target.close()
        return
    with _user_errors():
        repo = _repo(db)
        study = repo.get_study(study_id)
        if optuna_storage:
            name = exporter.to_optuna(repo, study, optuna_storage)
            err.print(f"wrote Optuna study '{name}' to {optuna_storage}", highlight=False)
            return
        if format not in ("csv", "json"):
            fail(f"--format: must be csv or json, not {format!r}")
        stream = output.open("w", newline="") if output else sys.stdout
        try:
            if format == "csv":
                exporter.to_csv(repo, study, stream)
            else:
                exporter.to_json(repo, study, stream)
        finally:
            if output:
                stream.close()


# --- the server and its clients -----------------------------------------------------------


class _Remote:
    """A JSON document from the server read with attribute access, so the tables and
    printers written for repository records show it unchanged."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.__dict__.update(document)


def _remote_study(document: Mapping[str, Any]) -> _Remote:
    return _Remote({**document, "objective_metric": document["objective"]["metric"]})


def _remote_studies_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="studies")
    for col in ("id", "name", "owner", "status", "strategy", "objective", "best", "created"):
        table.add_column(col)
    for s in rows:
        strat, objective = s["strategy"], s["objective"]
        table.add_row(
            str(s["id"]),
            s["name"],
            _fmt(s["owner"]),
            s["status"],
            f"{strat['sampler']}+{strat['scheduler']}",
            f"{objective['metric']} ({objective['mode']})",
            _fmt(s["best_value"]),
            str(s["created_at"])[:16].replace("T", " "),
        )
    out.print(table)


@contextmanager
def _client(server: str | None, token: str | None) -> Iterator[Any]:
    """A client of `server`; the server's refusals print their field/message lines and
    exit 2 (a 4xx: the request was wrong) or 1 (the server or the network failed)."""
    from hpo.client import ApiError, Client

    if not server:
        fail("needs --server URL (or HPO_SERVER)")
    try:
        with Client(server, token) as client:
            yield client
    except ApiError as exc:
        lines = "\n".join(f"  {f}: {m}" if f else f"  {m}" for f, m in exc.problems)
        where = f"server answered {exc.status}" if exc.status else "no answer"
        fail(f"{where}:\n{lines}", code=2 if exc.client_error else 1)


ServerRequired = Annotated[
    str | None,
    typer.Option("--server", envvar="HPO_SERVER", help="The hpo server (http://host:port)."),
]
StudyIdArgument = Annotated[int, typer.Argument(metavar="STUDY_ID")]


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (HPO_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port to bind (HPO_PORT).")
    ] = None,
    db: DbOption = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster (default: HPO_RAY_ADDRESS, else local)."),
    ] = None,
    runners: Annotated[
        int, typer.Option(min=0, help="Runners executing queued studies in this process.")
    ] = 1,
) -> None:
    """Serve the REST API (/api/v1) and run queued studies with N runners.

    Without authentication (no API token exists) only a loopback address may be bound:
    anyone reaching the port could otherwise run searches and read every study.
    """
    import uvicorn

    from api.app import create_app
    from hpo import service

    settings = get_settings()
    host = host or settings.host
    port = settings.port if port is None else port
    url = db or settings.database_url
    with _user_errors():
        repo = _repo(url)
        try:
            secured = service.auth_enabled(repo)
        finally:
            repo.close()
    if not secured and not _is_loopback(host):
        fail(
            f"refusing to bind {host} without authentication: create an API token first, "
            "or bind a loopback address (--host 127.0.0.1)"
        )
    started: list[Any] = []
    if runners:
        from hpo.execution.runner import start_runners, stop_runners

        started = start_runners(url, runners, ray_address=ray_address or settings.ray_address)
    try:
        server = uvicorn.Server(uvicorn.Config(create_app(url), host=host, port=port))
        server.run()
    finally:
        if started:
            stop_runners(started)


@app.command()
def submit(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="A study spec (YAML/JSON).")],
    server: ServerRequired = None,
    token: TokenOption = None,
    strategy: Annotated[
        str | None, typer.Option(help="grid, random, tpe/bayes, gp, hyperband, asha, bohb.")
    ] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Trials to finish.")] = None,
) -> None:
    """Queue a study on a server; prints its id (the server validates the spec)."""
    try:
        text = spec_path.read_text()
    except OSError as exc:
        fail(f"cannot read {spec_path}: {exc.strerror}")
    with _client(server, token) as client:
        study = client.submit(
            text, yaml=spec_path.suffix != ".json", strategy=strategy, trials=trials
        )
    print(study["id"])


@app.command()
def status(
    study_id: StudyIdArgument,
    server: ServerRequired = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """A study's status, trial counts and best value, from a server."""
    with _client(server, token) as client:
        study = client.study(study_id)
    if as_json:
        _print_json(study)
        return
    counts = "  ".join(f"{k} {v}" for k, v in study["trial_counts"].items())
    out.print(
        f"study {study['id']} {study['name']}: {study['status']}  "
        f"(target {_fmt(study['trials_target'])}; {counts})\n"
        f"best {study['objective']['metric']} = {_fmt(study['best_value'])}",
        highlight=False,
    )
    if study["error"]:
        out.print(f"error: {study['error']}", highlight=False)


@app.command()
def watch(
    study_id: StudyIdArgument,
    server: ServerRequired = None,
    token: TokenOption = None,
) -> None:
    """Follow a study live (a progress bar fed by its event stream) until it ends, then
    print the best trial. Exits 1 if the study failed or was cancelled."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with _client(server, token) as client:
        study = client.study(study_id)
        metric = study["objective"]["metric"]
        bar = Bar(
            TextColumn("[bold]trials"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err,
        )
        task = bar.add_task("trials", total=study["trials_target"], detail="")

        def refresh(doc: Mapping[str, Any]) -> None:
            c = doc["trial_counts"]
            bar.update(
                task,
                completed=c["completed"] + c["pruned"],
                detail=f"{doc['status']}  run {c['running']} pruned {c['pruned']} "
                f"failed {c['failed']} best {metric}={_fmt(doc['best_value'])}",
            )

        ending = study["status"]
        with bar:
            refresh(study)
            # The summary is re-read on events rather than rebuilt from them: counts stay
            # right when watching starts late or events were closed in bulk on resume.
            last_refresh = 0.0
            for event in client.events(study_id):
                ending = event.kind
                now = time.monotonic()
                if now - last_refresh >= 0.5:
                    refresh(client.study(study_id))
                    last_refresh = now
            study = client.study(study_id)
            refresh(study)
        if study["status"] != "completed":
            fail(f"study {study_id} {study['status']}: {study['error'] or ending}", code=1)
        if study["best_trial"] is None:
            fail(f"study {study_id} has no finished trial with a finite {metric}", code=1)
        _print_best(_Remote(study["best_trial"]), metric)


@app.command()
def cancel(
    study_id: StudyIdArgument,
    server: ServerRequired = None,
    token: TokenOption = None,
) -> None:
    """Cancel a queued or running study on a server."""
    with _client(server, token) as client:
        study = client.cancel(study_id)
    if study["status"] == "running":
        # The driver owns the study: it stops the trials and marks the study cancelled.
        out.print(f"study {study['id']}: cancel requested; its trials stop within seconds")
    else:
        out.print(f"study {study['id']}: {study['status']}", highlight=False)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Migrate the database schema to the version this hpo needs."""
    from hpo.storage import migrations

    url = db or get_settings().database_url
    with _user_errors():
        before = migrations.current_revision(url)
        migrations.upgrade(url)
        after = migrations.current_revision(url)
    out.print(f"database at revision {after} (was {before or 'empty'})", highlight=False)


# --- runners and tokens -------------------------------------------------------------------


@app.command()
def runner(
    db: DbOption = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster (default: HPO_RAY_ADDRESS, else local)."),
    ] = None,
    lease_s: Annotated[
        float,
        typer.Option(
            "--lease-s",
            min=2,
            help="Seconds a study stays ours without a heartbeat; after that, if this "
            "runner died, another one resumes it.",
        ),
    ] = 30,
    max_studies: Annotated[int, typer.Option(min=1, help="Studies run at once.")] = 1,
) -> None:
    """Run queued studies from the database, each in its own driver process, until SIGTERM
    (or Ctrl-C), which leaves the running studies queued, resumable by any runner."""
    from hpo.execution.runner import Runner, install_signal_handlers

    url = db or get_settings().database_url
    with _user_errors():
        _repo(url).close()  # a wrong URL or an old schema fails here, with its message
    worker = Runner(
        url,
        ray_address=ray_address or get_settings().ray_address,
        lease_s=lease_s,
        heartbeat_s=max(0.5, lease_s / 6),
        max_studies=max_studies,
    )
    install_signal_handlers(worker)
    err.print(f"runner {worker.worker_id} on {url}", highlight=False)
    worker.run_forever()


token_app = typer.Typer(help="API tokens of the REST API.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user the token is for.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="The user sees and cancels every study.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create a token for user NAME and print it: it is shown only this once (the database
    keeps only its hash). Once a token exists, the REST API requires one on every call."""
    from hpo import service

    name = name.strip()
    if not name or len(name) > 255:
        fail("NAME: must be 1-255 characters")
    with _user_errors():
        repo = _repo(db)
        try:
            token = service.create_token(repo, name, admin=admin)
        except ValueError as exc:
            fail(str(exc))
        finally:
            repo.close()
    print(token)


def main() -> None:  # pragma: no cover - console entry point
    app()
