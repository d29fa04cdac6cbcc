"""Commands that work on this machine: train one trial, run a whole search, run queued
studies, migrate the database, create API tokens."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from hpo.cli.common import DbOption, JsonOption, open_repo, user_errors
from hpo.cli.render import (
    epoch_printer,
    err,
    fail,
    fmt,
    literal,
    out,
    print_best,
    print_json,
    print_pareto,
    show,
    trials_bar,
    trials_table,
)
from hpo.config import get_settings
from hpo.errors import SpecError


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--set {pair!r}: expected key=value")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except (yaml.YAMLError, ValueError):
            # Not YAML, or a scalar YAML cannot convert (2024-13-45, a 5,000-digit number):
            # the text itself, which the hyperparameter's check then judges.
            values[key.strip()] = raw
    return values


def train(
    spec_path: Annotated[
        Path | None,
        typer.Argument(metavar="SPEC", help="A study spec (YAML/JSON); omit with --trial."),
    ] = None,
    trial: Annotated[
        str | None,
        typer.Option(
            "--trial",
            metavar="STUDY/NUMBER",
            help="Retrain a stored trial exactly as it ran (config, seeds, epochs) and "
            "compare its value with the stored one.",
        ),
    ] = None,
    db: DbOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a hyperparameter: key=value (repeatable)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs (default: budget.max_epochs).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train one trial: the spec's fixed values, the --set values, defaults for the rest;
    or, with --trial STUDY/NUMBER, retrain a stored trial from the database."""
    from hpo.spec import load_spec

    if (spec_path is None) == (trial is None):
        fail("give a SPEC to train its fixed values, or --trial STUDY/NUMBER to retrain one")
    if trial is not None:
        if set_ or epochs is not None:
            fail("--trial retrains the stored trial as it ran: --set and --epochs do not apply")
        _retrain(trial, db, as_json=as_json)
        return
    assert spec_path is not None
    with user_errors():
        spec = load_spec(spec_path)
    overrides = _parse_sets(set_ or [])
    if spec.trainable.builtin:
        from hpo.training.config import uses_user_code

        _check_overrides(overrides, user_code=uses_user_code({**spec.base_config(), **overrides}))
    config = spec.base_config()
    config["seed"] = spec.strategy.seed or 0
    config.update(overrides)
    if epochs is not None:
        config["epochs"] = epochs
    history: list[dict[str, float]] = []
    report = epoch_printer(history, quiet=as_json)
    if spec.trainable.function is not None:
        final = _train_function(spec.trainable.function, config, report, history)
    else:
        from hpo.training.config import BUILTIN_DATASETS

        dataset = config.get("dataset")
        if isinstance(dataset, str) and dataset not in BUILTIN_DATASETS:
            _check_reference("dataset", dataset)
        final = _train_builtin(config, report, db)
    if as_json:
        print_json({**final, "config": config, "history": history})


def _retrain(ref: str, db: str | None, *, as_json: bool) -> None:
    """`hpo train --trial STUDY/NUMBER`: the reproduce command `hpo best` prints."""
    from hpo.documents import objective_label
    from hpo.reproduce import parse_trial_ref, reproduce_trial
    from hpo.training.config import ConfigError

    try:
        study_id, number = parse_trial_ref(ref)
    except ValueError as exc:
        fail(str(exc))
    history: list[dict[str, float]] = []
    with user_errors():
        repo = open_repo(db)
        try:
            done = reproduce_trial(repo, study_id, number, epoch_printer(history, quiet=as_json))
        except ConfigError as exc:
            fail("invalid hyperparameters:\n" + "\n".join(f"  {f}: {r}" for f, r in exc.problems))
    if as_json:
        print_json(
            {
                "study_id": done.study_id,
                "number": done.number,
                "metric": done.metric,
                "value_of": done.how,
                "value": done.value,
                "stored_value": done.stored,
                "difference": done.difference,
                "config": done.config,
                "history": done.history,
            }
        )
        return
    label = objective_label(done.metric, done.how)
    diff = "" if done.difference is None else f"  (difference {done.difference:.3g})"
    show(
        f"trial {study_id}/{number}: {literal(label)} = {fmt(done.value)}; "
        f"stored {fmt(done.stored)}{diff}"
    )


def _check_reference(field: str, value: object) -> None:
    """Exit 2 naming `field` unless `value` is a well-formed ``module:function``."""
    from hpo import references

    try:
        references.parse(value)
    except references.InvalidReference as exc:
        fail(f"{field}: {exc}")


def _check_overrides(values: Mapping[str, Any], *, user_code: bool = False) -> None:
    """`--set` values against the core's vocabulary; with a user model or dataset
    (`user_code`), names outside it are the user's own and passed on unchecked."""
    from hpo.training.config import VOCABULARY, validate_value

    problems = []
    for name, value in values.items():
        if name not in VOCABULARY:
            if user_code:
                continue
            problems.append(f"  --set {name}: unknown hyperparameter (see README: Hyperparameters)")
        elif reason := validate_value(name, value):
            problems.append(f"  --set {name}={value!r}: {reason}")
    if problems:
        fail("invalid hyperparameters:\n" + "\n".join(problems))


def _train_builtin(
    config: dict[str, Any],
    report: Callable[[Mapping[str, Any]], None],
    database_url: str | None = None,
) -> dict[str, Any]:
    from pydantic import ValidationError

    from hpo.training.config import ConfigError, build_config
    from hpo.training.loop import train as run_training

    try:
        cfg = build_config(config)
        result = run_training(cfg, report, database_url=database_url)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'config'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        fail("invalid hyperparameters:\n" + "\n".join(lines))
    except ConfigError as exc:
        fail("invalid hyperparameters:\n" + "\n".join(f"  {f}: {r}" for f, r in exc.problems))
    # The delivered model's metrics (the last epoch's, or the best epoch's with keep_best),
    # then how the run ended and, with a test split, the test metrics.
    return {
        **result.delivered,
        "device": result.device,
        "stopped_early": result.stopped_early,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        **({"test": result.test} if result.test else {}),
    }


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


def run(
    spec_path: Annotated[
        Path | None, typer.Argument(metavar="SPEC", help="A study spec (omit with --resume).")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="grid, random, tpe/bayes, gp, hyperband, asha, bohb.")
    ] = None,
    sampler: Annotated[
        str | None,
        typer.Option(
            help="grid, random, tpe, gp, bohb, skopt, auto; nsga2, motpe, mogp (multi-objective)."
        ),
    ] = None,
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
    from hpo.storage.errors import LeaseHeldError, LeaseLostError, StorageError

    if (spec_path is None) == (resume is None):
        fail("give a SPEC to start a study, or --resume STUDY_ID to continue one")
    if strategy and (sampler or scheduler):
        fail(
            "--strategy names a sampler and a scheduler; give it or --sampler/--scheduler, not both"
        )
    with user_errors():
        repo = open_repo(db)
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
            # Malformed references fail here, not once per trial on the cluster (the
            # trial's loaders refuse them too, by the same parser).
            from hpo import service

            for field, value in service.code_references(spec):
                _check_reference(field, value)
            if spec.trainable.function is not None:
                # Fail here, not once per trial on the cluster.
                from hpo.execution.trainables import load_function

                try:
                    load_function(spec.trainable.function)
                except ImportError as exc:
                    fail(f"trainable.function: {exc}")
            # An earlier study to learn from must exist and fit: refused here, naming
            # the field, before a study is created.
            from hpo.warm_start import from_study_errors

            warm_errors = from_study_errors(repo, spec)
            if warm_errors:
                raise SpecError(warm_errors)
            from hpo.execution.driver import create_claimed_study

            # Created already claimed by this process: no runner can take it meanwhile.
            study_id = create_claimed_study(repo, spec).id
        if not as_json:
            show(
                f"study {study_id}: {repo.get_study(study_id).name}  (db: {repo.url})", console=err
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
        except LeaseLostError as exc:
            fail(
                f"another driver took study {study_id} over ({exc}); this one "
                "stopped and wrote nothing more",
                code=1,
            )
        except StorageError as exc:
            fail(
                f"the database stayed unavailable ({exc}); study {study_id} is "
                f"left resumable: hpo run --resume {study_id}",
                code=1,
            )
        except Exception as exc:
            fail(f"study {study_id} failed: {type(exc).__name__}: {exc}", code=1)
    _show_result(repo, final, as_json=as_json)


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM ends a run the way Ctrl-C does: cleanly, leaving the study resumable.
    raise KeyboardInterrupt


def _run_with_progress(repo: Any, study_id: int, ray_address: str | None, *, quiet: bool) -> Any:
    from hpo.execution.driver import run_study
    from hpo.execution.recorder import Progress
    from hpo.spec import load_spec

    spec = load_spec(repo.get_study(study_id).spec)
    progress = Progress(target=spec.budget.trials, mode=spec.objective.mode)
    if quiet:
        return run_study(repo, study_id, ray_address=ray_address, progress=progress)
    bar = trials_bar()
    task = bar.add_task("trials", total=spec.budget.trials, detail="")

    def refresh() -> None:
        c = progress.counts
        done = c["completed"] + c["pruned"]
        best = fmt(progress.best) if progress.best is not None else "-"
        bar.update(
            task,
            completed=done,
            detail=f"run {c['running']} pruned {c['pruned']} failed {c['failed']} "
            f"best {literal(spec.objective.metric)}={best}",
        )

    with bar:
        final = run_study(
            repo, study_id, ray_address=ray_address, progress=progress, on_step=refresh
        )
        refresh()
    return final


def _show_result(repo: Any, study: Any, *, as_json: bool) -> None:
    from hpo.documents import (
        pareto_document,
        reproduce_command,
        spec_objectives,
        study_document,
        value_label,
    )

    if as_json:
        print_json(study_document(repo, study))
        return
    top = repo.list_trials(study.id, sort="objective_value", limit=10)
    trials_table(top, study, title=f"top trials of study {study.id} ({study.status})")
    if len(spec_objectives(study.spec)) > 1:
        out.print()
        print_pareto(pareto_document(study, repo.pareto_trials(study.id), repo.url))
        return
    best = repo.best_trial(study.id)
    if best is None:
        show("no trial finished with a finite objective value")
        return
    out.print()
    print_best(best, value_label(study))
    show(f"reproduce: {literal(reproduce_command(study.id, best.number, repo.url))}")


def db_upgrade(db: DbOption = None) -> None:
    """Migrate the database schema to the version this hpo needs."""
    from hpo.storage import migrations

    url = db or get_settings().database_url
    with user_errors():
        before = migrations.current_revision(url)
        migrations.upgrade(url)
        after = migrations.current_revision(url)
    show(f"database at revision {after} (was {before or 'empty'})")


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
    with user_errors():
        open_repo(url).close()  # a wrong URL or an old schema fails here, with its message
    worker = Runner(
        url,
        ray_address=ray_address or get_settings().ray_address,
        lease_s=lease_s,
        heartbeat_s=max(0.5, lease_s / 6),
        max_studies=max_studies,
    )
    install_signal_handlers(worker)
    show(f"runner {worker.worker_id} on {url}", console=err)
    worker.run_forever()


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
    with user_errors():
        repo = open_repo(db)
        try:
            token = service.create_token(repo, name, admin=admin)
        except ValueError as exc:
            fail(str(exc))
        finally:
            repo.close()
    print(token)
