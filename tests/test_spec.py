"""The study spec: the issue's example parses, every class of bad input names its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo.errors import SpecError
from hpo.spec import SAMPLERS, STRATEGIES, apply_overrides, load_spec

EXAMPLE = """
name: mlp-digits
objective: {metric: val_accuracy, mode: max}
trainable: {dataset: digits, model: mlp}       # built-in core; or {function: "pkg.module:train"}
budget: {trials: 30, max_epochs: 20, min_epochs: 1, concurrency: 2, time_limit_s: 3600}
resources: {cpu: 1, gpu: 0}                    # per trial; gpu may be fractional
strategy: {sampler: tpe, scheduler: asha, seed: 0}
space:
  optimizer: {choice: [sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw]}
  lr: {loguniform: [1.0e-4, 0.3]}
  momentum: {uniform: [0.5, 0.99], when: {optimizer: [momentum, nesterov]}}
  hidden: {int: [32, 512], log: true}
  dropout: {uniform: [0.0, 0.5], step: 0.05}
  batch_size: {choice: [32, 64, 128]}
  lr_grid: {grid: [0.001, 0.01, 0.1]}
fixed: {schedule: cosine, warmup_epochs: 2, grad_clip_norm: 1.0}
"""


def base() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE)
    # lr_grid is the issue's illustration of a grid parameter; the core has no such knob.
    data["space"]["weight_decay"] = data["space"].pop("lr_grid")
    return data


def errors_of(data: Any) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(data)
    return {e.path: e.message for e in info.value.errors}


def test_issue_example_parses_with_every_field() -> None:
    spec = load_spec(base())
    assert spec.objective.mode == "max"
    assert spec.budget.concurrency == 2 and spec.budget.time_limit_s == 3600
    assert spec.strategy.sampler == "tpe" and spec.strategy.scheduler == "asha"
    assert spec.space["momentum"].when == {"optimizer": ["momentum", "nesterov"]}
    assert spec.space["weight_decay"].kind == "grid"
    assert spec.fixed["grad_clip_norm"] == 1.0


def test_the_issue_example_verbatim_is_refused_only_for_its_unknown_name() -> None:
    errs = errors_of(EXAMPLE)
    assert list(errs) == ["space.lr_grid"]
    assert "unknown hyperparameter" in errs["space.lr_grid"]


@pytest.mark.parametrize("path", sorted(Path("search_spaces").glob("*.yaml")))
def test_example_spaces_load(path: Path) -> None:
    spec = load_spec(path)
    assert load_spec(spec.dump()) == spec


def test_dump_round_trip_and_yaml_round_trip() -> None:
    spec = load_spec(base())
    assert load_spec(spec.dump()) == spec
    assert load_spec(spec.to_yaml()) == spec


def test_json_text_is_accepted() -> None:
    import json

    assert load_spec(json.dumps(base())).name == "mlp-digits"


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_shortcuts(name: str) -> None:
    data = base()
    data["strategy"] = name
    data["space"] = {"optimizer": {"choice": ["sgd", "adam"]}}
    spec = load_spec(data)
    assert (spec.strategy.sampler, spec.strategy.scheduler) == STRATEGIES[name]


def test_explicit_sampler_wins_over_shortcut() -> None:
    data = base()
    data["strategy"] = {"name": "asha", "sampler": "gp"}
    spec = load_spec(data)
    assert (spec.strategy.sampler, spec.strategy.scheduler) == ("gp", "asha")


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()

BAD = [
    # (dotted field to change, new value, expected error path, words in the reason)
    ("objective", _DELETE, "objective", "Field required"),
    ("colour", "blue", "colour", "unknown field"),
    ("name", "", "name", "at least 1 character"),
    ("name", "x" * 201, "name", "at most 200 characters"),
    ("objective.mode", "maximize", "objective.mode", "'min' or 'max'"),
    ("objective.metric", "val_acc", "objective.metric", "not reported"),
    ("objective.mode", "min", "objective.mode", "mode must be max"),
    ("budget.trials", 0, "budget.trials", "greater than or equal to 1"),
    ("budget.trials", "many", "budget.trials", "valid integer"),
    ("budget.min_epochs", 50, "budget", "min_epochs must be <= max_epochs"),
    ("budget.time_limit_s", float("inf"), "budget.time_limit_s", "finite"),
    ("budget.time_limit_s", -5, "budget.time_limit_s", "greater than 0"),
    ("resources.gpu", -0.5, "resources.gpu", "greater than or equal to 0"),
    ("resources.cpu", 0, "resources.cpu", "greater than 0"),
    ("strategy", "annealing", "strategy", "unknown strategy 'annealing'"),
    ("strategy.sampler", "cmaes", "strategy.sampler", "unknown sampler 'cmaes'"),
    ("strategy.scheduler", "pb2", "strategy.scheduler", "unknown scheduler 'pb2'"),
    ("strategy.reduction_factor", 1, "strategy.reduction_factor", "greater than 1"),
    ("space.lr", {"loguniform": [0, 0.3]}, "space.lr.loguniform", "low must be > 0"),
    ("space.lr", {"uniform": [0.3, 0.1]}, "space.lr.uniform", "low must be < high"),
    ("space.lr", {"uniform": [0.1, 0.3], "choice": [1]}, "space.lr", "exactly one distribution"),
    ("space.lrr", {"uniform": [0.1, 0.3]}, "space.lrr", "did you mean lr"),
    ("space.epochs", {"int": [1, 5]}, "space.epochs", "budget.max_epochs"),
    ("space.optimizer", {"choice": ["sgd", "lion"]}, "space.optimizer.choice[1]", "must be one of"),
    ("space.hidden", {"uniform": [1.5, 3.5]}, "space.hidden.uniform", "integer"),
    ("space.dropout", {"uniform": [0.0, 1.5]}, "space.dropout.uniform", "1.5"),
    (
        "space.momentum",
        {"uniform": [0.5, 0.9], "when": {"optimiser": ["momentum"]}},
        "space.momentum.when.optimiser",
        "no such parameter",
    ),
    (
        "space.momentum",
        {"uniform": [0.5, 0.9], "when": {"optimizer": ["lion"]}},
        "space.momentum.when.optimizer",
        "never takes 'lion'",
    ),
    ("fixed.optimizer", "lbfgs-turbo", "fixed.optimizer", "must be one of"),
    ("fixed.lr", 0.1, "space.lr", "also set in fixed"),
    ("fixed.bogus", 1, "fixed.bogus", "unknown hyperparameter"),
    ("fixed.grad_clip_norm", -1.0, "fixed.grad_clip_norm", ">= 0"),
    ("trainable", {"dataset": "digits", "function": "a.b:c"}, "trainable", "not both"),
    ("trainable", {"function": "not a path"}, "trainable", "package.module:function"),
    ("trainable", {"model": "mlp"}, "trainable", "needs dataset"),
    ("trainable.dataset", "imagenet", "trainable.dataset", "unknown dataset 'imagenet'"),
    ("trainable.model", "resnet", "trainable.model", "must be one of mlp, cnn, rnn, transformer"),
]


@pytest.mark.parametrize(
    ("field", "value", "path", "reason"), BAD, ids=[b[2] + ":" + b[3][:20] for b in BAD]
)
def test_each_class_of_bad_input_names_its_field(
    field: str, value: Any, path: str, reason: str
) -> None:
    errs = errors_of(_set(base(), field, value))
    assert path in errs, errs
    assert reason in errs[path], errs


def test_all_problems_are_reported_at_once() -> None:
    data = base()
    data["budget"]["trials"] = -1
    data["space"]["lr"] = {"loguniform": [-1, 0.3]}
    data["fixed"]["optimizer"] = "lbfgs-turbo"
    data["space"]["lrr"] = {"uniform": [0, 1]}
    errs = errors_of(data)
    assert {"budget.trials", "space.lr.loguniform", "fixed.optimizer", "space.lrr"} <= set(errs)


def test_grid_sampler_needs_enumerable_params() -> None:
    data = base()
    data["strategy"] = {"sampler": "grid"}
    errs = errors_of(data)
    assert errs["space.lr"] == "the grid sampler needs choice, grid or grid_points"
    assert "space.optimizer" not in errs


def test_grid_too_large_is_refused() -> None:
    data = base()
    data["strategy"] = "grid"
    data["space"] = {
        n: {"uniform": [0.0, 0.5], "grid_points": 100} for n in ("dropout", "label_smoothing", "l1")
    }
    assert "more than" in errors_of(data)["space"]


def test_yaml_syntax_error_and_non_mapping() -> None:
    assert "line 2" in errors_of("name: x\n  bad: [unclosed\n")[""]
    assert "mapping" in errors_of("- just\n- a list\n")[""]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    assert "cannot read" in errors_of(tmp_path / "nope.yaml")[""]


def test_user_function_spec_skips_the_core_vocabulary() -> None:
    spec = load_spec(
        {
            "name": "f",
            "objective": {"metric": "loss", "mode": "min"},
            "trainable": {"function": "mypkg.train:fit"},
            "space": {"anything": {"uniform": [0, 1]}},
            "fixed": {"whatever": "goes"},
        }
    )
    # A user function gets the study's data seed too (one split per study).
    assert spec.trial_config({"anything": 0.5}, seed=3) == {
        "data_seed": 0,
        "epochs": 10,
        "whatever": "goes",
        "anything": 0.5,
        "seed": 3,
    }


def test_trial_config_resolves_everything() -> None:
    spec = load_spec(base())
    config = spec.trial_config({"lr": 0.01, "optimizer": "adam"}, seed=7)
    assert config["dataset"] == "digits" and config["model"] == "mlp"
    assert config["epochs"] == 20 and config["seed"] == 7
    assert config["schedule"] == "cosine" and config["lr"] == 0.01
    assert config["early_stopping_metric"] == "val_accuracy"


def test_every_trial_gets_the_study_data_seed() -> None:
    data = base()
    data["strategy"]["seed"] = 11
    spec = load_spec(data)
    configs = [spec.trial_config({"lr": 0.01}, seed=s) for s in (1, 2, 3)]
    assert {c["data_seed"] for c in configs} == {11}
    assert {c["seed"] for c in configs} == {1, 2, 3}
    data["fixed"]["data_seed"] = 4
    assert load_spec(data).trial_config({}, seed=1)["data_seed"] == 4
    data["fixed"].pop("data_seed")
    data["space"]["data_seed"] = {"int": [0, 3]}
    assert "space.data_seed" in errors_of(data)


def test_overrides_are_revalidated() -> None:
    spec = load_spec(base())
    assert apply_overrides(spec, strategy="hyperband").strategy.scheduler == "hyperband"
    assert apply_overrides(spec, trials=3, name="n").budget.trials == 3
    with pytest.raises(SpecError):
        apply_overrides(spec, sampler="nope")
    assert "nope" not in SAMPLERS


@settings(max_examples=60, deadline=None)
@given(
    trials=st.integers(1, 1000),
    max_epochs=st.integers(3, 50),  # the fixed warmup_epochs 2 needs more epochs
    seed=st.integers(0, 2**31 - 1),
    strategy=st.sampled_from(list(STRATEGIES)),
    lr=st.tuples(st.floats(1e-6, 1e-2), st.floats(1.5, 100)),
)
def test_parse_dump_parse_identity_for_specs(
    trials: int, max_epochs: int, seed: int, strategy: str, lr: tuple[float, float]
) -> None:
    data = base()
    data["budget"] = {"trials": trials, "max_epochs": max_epochs, "min_epochs": 1}
    data["strategy"] = {"name": strategy, "seed": seed}
    data["space"] = {
        "optimizer": {"choice": ["sgd", "adam"]},
        "lr": {"loguniform": [lr[0], lr[0] * lr[1]], "grid_points": 3},
    }
    spec = load_spec(data)
    assert load_spec(spec.dump()) == spec


# --- refusing at load what would fail every trial --------------------------------------


def _spec(space: dict | None = None, fixed: dict | None = None, **top: Any) -> dict[str, Any]:
    data = {
        "name": "t",
        "objective": {"metric": "val_loss", "mode": "min"},
        "trainable": {"dataset": "digits"},
        "budget": {"max_epochs": 10},
        "space": space or {},
        "fixed": fixed or {},
    }
    data.update(top)
    return data


@pytest.mark.parametrize(
    ("space", "fixed", "trainable", "path", "fragment"),
    [
        ({}, {"warmup_epochs": 10}, None, "fixed.warmup_epochs", "must be < epochs (10)"),
        ({"warmup_epochs": {"uniform": [0, 12]}}, {}, None, "space.warmup_epochs", "< epochs"),
        ({}, {"schedule": "noam"}, None, "fixed.schedule", "needs warmup_epochs > 0"),
        (
            {"schedule": {"choice": ["cosine", "noam"]}},
            {},
            None,
            "space.schedule",
            "needs warmup_epochs > 0",
        ),
        (
            {"base_lr": {"loguniform": [1e-4, 0.1]}},
            {"schedule": "cyclic", "max_lr": 0.05},
            None,
            "space.base_lr",
            "max_lr > base_lr",
        ),
        ({}, {"augment_rotate": 10.0}, {"dataset": "wine"}, "fixed.augment_rotate", "image"),
        (
            {"augment_shift": {"int": [0, 2]}},
            {},
            {"dataset": "wine"},
            "space.augment_shift",
            "image",
        ),
        ({"model": {"choice": ["mlp", "cnn"]}}, {}, {"dataset": "wine"}, "space.model", "cnn"),
        ({}, {}, {"dataset": "wine", "model": "cnn"}, "trainable.model", "cnn"),
        (
            {"batch_size": {"uniform": [16, 256]}},
            {},
            None,
            "space.batch_size.uniform",
            "integers only",
        ),
        (
            {"lr": {"loguniform": [1e-3, 0.1]}},
            {"schedule": "cosine", "min_lr": 0.005},
            None,
            "space.lr",
            "min_lr < lr",
        ),
        (
            # lr 0.1 is scaled by 16·4/256: 0.025 ≤ min_lr 0.03 at the low end of batch_size.
            {"batch_size": {"choice": [16, 256]}},
            {
                "schedule": "cosine",
                "lr": 0.1,
                "min_lr": 0.03,
                "lr_scaling": "linear",
                "grad_accum_steps": 4,
                "base_batch_size": 256,
            },
            None,
            "space.batch_size",
            "after lr_scaling",
        ),
        ({"hidden": {"int": [16, 10**400]}}, {}, None, "space.hidden.int", "<= 65536"),
        ({"depth": {"choice": [2, 65]}}, {}, None, "space.depth.choice[1]", "<= 64"),
        ({}, {"channels": 4097}, None, "fixed.channels", "<= 4096"),
        ({}, {"n_samples": 10**400}, None, "fixed.n_samples", "<= 1000000"),
        ({}, {}, {"dataset": "wine", "model": "rnn"}, "trainable.model", "sequence or image"),
        (
            {"model": {"choice": ["mlp", "transformer"]}},
            {},
            {"dataset": "breast_cancer"},
            "space.model",
            "'transformer' needs a sequence or image dataset",
        ),
        ({}, {}, {"dataset": "adding", "model": "cnn"}, "trainable.model", "sequence dataset"),
        (
            {"heads": {"choice": [2, 3, 4]}},
            {"d_model": 32},
            {"dataset": "digits", "model": "transformer"},
            "space.heads",
            "must divide d_model (32)",
        ),
        (
            {"d_model": {"choice": [24, 32]}},
            {"heads": 16},
            {"dataset": "digits", "model": "transformer"},
            "space.d_model",
            "must divide d_model",
        ),
        ({}, {"d_model": 4097}, None, "fixed.d_model", "<= 4096"),
        ({"heads": {"int": [1, 65]}}, {}, None, "space.heads.int", "<= 64"),
        ({}, {"seq_len": 10_001}, None, "fixed.seq_len", "<= 10000"),
        ({}, {"cell": "lstmm"}, None, "fixed.cell", "lstm, gru, rnn"),
        ({}, {"norm_position": "middle"}, None, "fixed.norm_position", "pre, post"),
    ],
)
def test_specs_that_would_fail_trials_are_refused_at_load(
    space: dict, fixed: dict, trainable: dict | None, path: str, fragment: str
) -> None:
    data = _spec(space, fixed)
    if trainable is not None:
        data["trainable"] = trainable
    errs = errors_of(data)
    assert path in errs, errs
    assert fragment in errs[path], errs


def test_conditions_are_respected_by_the_region_checks() -> None:
    # noam only ever runs with warm-up: warmup_epochs is drawn whenever schedule is noam.
    space = {
        "schedule": {"choice": ["cosine", "noam"]},
        "warmup_epochs": {"uniform": [1, 3], "when": {"schedule": ["noam"]}},
    }
    load_spec(_spec(space))
    # The other way round, noam is drawn with warmup_epochs' fallback 0: refused.
    space["warmup_epochs"]["when"] = {"schedule": ["cosine"]}
    assert "needs warmup_epochs > 0" in errors_of(_spec(space))["space.schedule"]
    # cnn only on digits: a conditional model never meets wine.
    space = {
        "dataset": {"choice": ["digits", "wine"]},
        "model": {"choice": ["mlp", "cnn"], "when": {"dataset": ["digits"]}},
    }
    load_spec(_spec(space))
    del space["model"]["when"]
    assert "'wine' is tabular" in errors_of(_spec(space))["space.model"]


def test_every_region_problem_is_listed_at_once() -> None:
    errs = errors_of(
        _spec(
            {"schedule": {"choice": ["noam", "cyclic"]}, "max_lr": {"uniform": [1e-5, 1e-3]}},
            {"warmup_epochs": 10, "base_lr": 1e-3},
        )
    )
    assert set(errs) >= {"fixed.warmup_epochs", "space.max_lr"}, errs


def test_an_absurd_number_is_refused_without_flooding_the_message() -> None:
    errs = errors_of(_spec({"hidden": {"choice": [10**400]}}))
    assert len(errs["space.hidden.choice[0]"]) < 100


# --- user models ----------------------------------------------------------------------


def test_a_user_model_may_search_and_fix_names_outside_the_vocabulary() -> None:
    data = _spec(
        {"width": {"int": [16, 128]}, "lr": {"loguniform": [1e-3, 0.1]}},
        {"blocks": 2, "schedule": "cosine"},
        trainable={"dataset": "digits", "model": "hpo.examples.models:build"},
    )
    spec = load_spec(data)
    config = spec.trial_config({"width": 20, "lr": 0.01}, seed=1)
    assert config["model"] == "hpo.examples.models:build"
    assert config["width"] == 20 and config["blocks"] == 2
    # The core's own names are still checked against the vocabulary.
    data["fixed"]["schedule"] = "cosin"
    assert "must be one of" in errors_of(data)["fixed.schedule"]
    # Beside a structural error, the extra names are still allowed.
    data["budget"] = {"trials": 0}
    assert "fixed.blocks" not in errors_of(data) and "space.width" not in errors_of(data)


def test_names_outside_the_vocabulary_need_user_code_in_every_trial() -> None:
    builtin = _spec({"width": {"int": [16, 128]}}, {"blocks": 2})
    errs = errors_of(builtin)
    assert "unknown hyperparameter" in errs["space.width"]
    assert "unknown hyperparameter" in errs["fixed.blocks"]
    # A space that can pick a built-in model cannot pass unknown names to it.
    mixed = _spec(
        {"model": {"choice": ["mlp", "hpo.examples.models:build"]}},
        {"blocks": 2},
    )
    assert "unknown hyperparameter" in errors_of(mixed)["fixed.blocks"]
    # A user dataset is user code too.
    user_data = _spec({}, {"blocks": 2}, trainable={"dataset": "mypkg.data:load"})
    load_spec(user_data)


def test_a_user_model_must_be_a_reference() -> None:
    data = _spec(trainable={"dataset": "digits", "model": "my model"})
    assert "'pkg.module:build'" in errors_of(data)["trainable.model"]
