"""The hyperparameter vocabulary: registries match it, single values and whole configs validate."""

from __future__ import annotations

import subprocess
import sys
import typing

import pydantic
import pytest

from hpo.training import config as C
from hpo.training.config import (
    VOCABULARY,
    ConfigError,
    TrainConfig,
    build_config,
    is_regression_dataset,
    metric_mode,
    validate_value,
)
from hpo.training.data import DATASETS
from hpo.training.init import INITIALIZERS
from hpo.training.models import _CELLS as CELLS
from hpo.training.models import ACTIVATIONS, MODELS
from hpo.training.optimizers import OPTIMIZERS
from hpo.training.preprocessing import PREPROCESSORS
from hpo.training.schedules import LR_SCALING, SCHEDULES


def _choices(field: str) -> set[str]:
    return set(typing.get_args(TrainConfig.model_fields[field].annotation))


@pytest.mark.parametrize(
    ("registry", "field"),
    [
        (OPTIMIZERS, "optimizer"),
        (SCHEDULES, "schedule"),
        (INITIALIZERS, "init"),
        (PREPROCESSORS, "preprocess"),
        (ACTIVATIONS, "activation"),
        (CELLS, "cell"),
        (LR_SCALING, "lr_scaling"),
    ],
)
def test_registry_keys_equal_the_literal_choices(registry: dict, field: str) -> None:
    assert set(registry) == _choices(field)


def test_dataset_and_model_registries_equal_builtin_names() -> None:
    assert set(DATASETS) == set(C.BUILTIN_DATASETS)
    assert set(MODELS) == set(C.BUILTIN_MODELS)


def test_vocabulary_is_the_field_names_and_every_field_is_described() -> None:
    assert set(TrainConfig.model_fields) == VOCABULARY
    for name, info in TrainConfig.model_fields.items():
        assert info.description and info.description.startswith("Default"), name


def test_defaults() -> None:
    cfg = build_config({})
    assert (cfg.dataset, cfg.epochs, cfg.batch_size, cfg.lr, cfg.val_fraction) == (
        "digits",
        20,
        64,
        1e-3,
        0.2,
    )


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("nope", 1, "unknown hyperparameter"),
        ("epochs", "ten", "must be a valid integer"),
        ("epochs", 2.5, "must be a valid integer"),
        ("epochs", True, "must be a number, not a boolean"),
        ("lr", 0.0, "must be > 0"),
        ("lr", float("nan"), "must be a finite number"),
        ("dropout", 1.0, "must be < 1"),
        ("momentum", -0.1, "must be >= 0"),
        ("optimizer", "lion", "must be one of sgd, momentum, nesterov, adagrad, rmsprop"),
        ("schedule", "linear", "must be one of constant, step"),
        ("milestones", [1, "x"], "must be a valid number"),
    ],
)
def test_validate_value_rejects_each_bad_class(name: str, value: object, reason: str) -> None:
    message = validate_value(name, value)
    assert message is not None and reason in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("lr", 0.1), ("lr", "1e-3"), ("optimizer", "adamw"), ("milestones", [5, 8]), ("seed", 3)],
)
def test_validate_value_accepts_good_values(name: str, value: object) -> None:
    assert validate_value(name, value) is None


def test_validate_value_does_not_run_cross_field_checks() -> None:
    # max_lr below the default base_lr is only wrong together with schedule=cyclic.
    assert validate_value("max_lr", 1e-6) is None
    assert validate_value("schedule", "noam") is None


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"schedule": "cyclic", "base_lr": 0.1, "max_lr": 0.01}, "max_lr", "max_lr > base_lr"),
        ({"schedule": "noam"}, "warmup_epochs", "warmup_epochs > 0"),
        ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs", "must be < epochs"),
        ({"model": "cnn", "dataset": "wine"}, "model", "image dataset"),
        ({"augment_shift": 1, "dataset": "wine"}, "augment_shift", "image dataset"),
        ({"dataset": "mnist"}, "dataset", "must be one of"),
        (
            {"dataset": "synthetic_regression", "early_stopping_metric": "val_accuracy"},
            "early_stopping_metric",
            "val_rmse",
        ),
        ({"optimizer": "sgd", "lrr": 0.1}, "lrr", "unknown hyperparameter"),
        ({"model": "rnn", "dataset": "wine"}, "model", "sequence or image dataset"),
        ({"model": "transformer", "dataset": "breast_cancer"}, "model", "is tabular"),
        ({"model": "cnn", "dataset": "adding"}, "model", "is a sequence dataset"),
        ({"augment_flip": True, "dataset": "adding"}, "augment_flip", "image dataset"),
        ({"model": "transformer", "d_model": 48, "heads": 5}, "heads", "must divide d_model"),
        ({"d_model": 4097}, "d_model", "<= 4096"),
        ({"heads": 65}, "heads", "<= 64"),
        ({"seq_len": 10_001}, "seq_len", "<= 10000"),
        ({"model": "resnet"}, "model", "or 'pkg.module:build'"),
        ({"hidden": 10**400}, "hidden", "<= 65536"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "test_fraction", "< 1"),
        ({"norm": "batch", "batch_size": 1}, "batch_size", "batch_size >= 2"),
        (
            # min_lr is compared with the lr after scaling: 0.1 × (16·4/256) = 0.025.
            {
                "schedule": "cosine",
                "lr": 0.1,
                "min_lr": 0.03,
                "lr_scaling": "linear",
                "batch_size": 16,
                "grad_accum_steps": 4,
                "base_batch_size": 256,
            },
            "min_lr",
            "after lr_scaling: 0.025",
        ),
    ],
)
def test_build_config_rejects_inconsistent_configs(values: dict, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        build_config(values)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_config_error_lists_every_problem_with_its_field() -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"lr": -1, "depth": 100, "schedule": "noam", "max_lr": 0})
    fields = [f for f, _ in info.value.problems]
    assert fields == ["lr", "max_lr", "depth"]
    with pytest.raises(ConfigError) as info:
        build_config(
            {"schedule": "noam", "warmup_epochs": 30, "epochs": 20, "base_lr": 1.0, "max_lr": 0.5}
        )
    assert [f for f, _ in info.value.problems] == ["warmup_epochs"]


def test_size_knobs_have_documented_upper_bounds() -> None:
    for name, limit in [
        ("hidden", 65_536),
        ("depth", 64),
        ("channels", 4096),
        ("n_samples", 1_000_000),
        ("n_features", 100_000),
        ("batch_size", 65_536),
    ]:
        assert validate_value(name, limit) is None
        assert validate_value(name, limit + 1) == f"must be <= {limit}"
        assert validate_value(name, 10**400) == f"must be <= {limit}"
        assert f"at most {limit:,}" in C.TrainConfig.model_fields[name].description or (
            f"at most {limit}" in C.TrainConfig.model_fields[name].description
        )


def test_config_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        build_config({}).lr = 1.0  # type: ignore[misc]


def test_metrics_and_modes() -> None:
    assert C.METRICS_CLASSIFICATION == ("train_loss", "val_loss", "val_accuracy")
    assert C.METRICS_REGRESSION == ("train_loss", "val_loss", "val_rmse")
    assert metric_mode("val_accuracy") == "max"
    assert metric_mode("val_loss") == metric_mode("val_rmse") == "min"
    assert is_regression_dataset("synthetic_regression") is True
    assert is_regression_dataset("digits") is False
    assert is_regression_dataset("mypkg.data:load") is None


def test_config_module_does_not_import_torch() -> None:
    code = "import sys, hpo.training.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
