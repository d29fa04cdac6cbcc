"""Pre-training → fine-tuning: stored weights, frozen layers, the head's own lr, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hpo.errors import SpecError
from hpo.spec import load_spec
from hpo.training.config import ConfigError, build_config, validate_value
from hpo.training.finetune import head_module, load_matching
from hpo.training.loop import train
from hpo.training.models import create_model
from hpo.training.optimizers import create_optimizer, param_groups
from hpo.training.pretrained import TrialWeights, parse_init_from, resolve_init_from
from hpo.training.schedules import LRStepper, create_schedule

SMALL = {"dataset": "digits", "model": "mlp", "hidden": 32, "depth": 2, "lr": 3e-3}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An MLP trained on digits for 5 epochs, saved both ways `init_from` accepts:
    (a dict with 'state_dict' and 'config', as `hpo best --weights` writes; a plain one)."""
    result = train({**SMALL, "epochs": 5, "seed": 1, "lr": 1e-2})
    assert result.final["val_accuracy"] > 0.9
    assert result.model is not None
    folder = tmp_path_factory.mktemp("weights")
    wrapped, plain = folder / "best.pt", folder / "plain.pt"
    state = result.model.state_dict()
    torch.save({"state_dict": state, "config": {**SMALL, "seed": 1, "lr": 1e-2}}, wrapped)
    torch.save(state, plain)
    return wrapped, plain


def _errors(exc: ConfigError) -> dict[str, str]:
    return dict(exc.problems)


@pytest.mark.parametrize("form", ["wrapped", "plain"])
def test_a_fine_tuned_run_starts_from_the_stored_weights(
    pretrained: tuple[Path, Path], form: str
) -> None:
    path = pretrained[0] if form == "wrapped" else pretrained[1]
    # Another seed than the pre-training: only the stored weights can explain the start.
    fresh = train({**SMALL, "epochs": 1, "seed": 7, "lr": 1e-4})
    tuned = train({**SMALL, "epochs": 1, "seed": 7, "lr": 1e-4, "init_from": str(path)})
    # A fresh start on 10 classes begins at ≈ ln 10 ≈ 2.3 and cannot get far at lr 1e-4.
    assert fresh.history[0]["train_loss"] > 1.5
    assert tuned.history[0]["train_loss"] < 0.1 * fresh.history[0]["train_loss"]
    assert tuned.history[0]["val_accuracy"] > 0.9


def test_frozen_layers_stay_bit_identical(pretrained: tuple[Path, Path]) -> None:
    stored = torch.load(pretrained[1], weights_only=True)
    config = {
        **SMALL,
        "epochs": 3,
        "seed": 3,
        "optimizer": "adamw",
        "weight_decay": 0.1,  # neither decay nor L1 may touch a frozen weight
        "l1": 1e-4,
        "init_from": str(pretrained[1]),
        "freeze": ["blocks.0"],
    }
    result = train(config)
    assert result.model is not None
    after = result.model.state_dict()
    for name in ("blocks.0.0.weight", "blocks.0.0.bias"):
        assert torch.equal(after[name], stored[name]), name
    for name in ("blocks.1.0.weight", "head.weight"):
        assert not torch.equal(after[name], stored[name]), name


def test_freeze_prefixes_are_whole_dotted_components() -> None:
    model = create_model("mlp", in_shape=(4,), n_outputs=2, hidden=3, depth=2, **_MLP)
    from hpo.training.finetune import freeze

    frozen = freeze(model, ["blocks.1"])
    assert frozen == ["blocks.1.0.weight", "blocks.1.0.bias"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "blocks.0.0.weight",
        "blocks.0.0.bias",
        "head.weight",
        "head.bias",
    ]


_MLP: dict[str, Any] = {"activation": "relu", "dropout": 0.0, "norm": "none", "residual": False}


def test_head_lr_is_lr_times_lr_head_mult_after_one_step_by_hand() -> None:
    torch.manual_seed(0)
    model = create_model("mlp", in_shape=(4,), n_outputs=3, hidden=5, depth=1, **_MLP)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    head = {id(p) for n, p in model.named_parameters() if n.startswith("head.")}
    groups = param_groups(model, weight_decay=0.0, head=head, lr_head_mult=10.0)
    optimizer = create_optimizer("sgd", groups, lr=0.05)
    # A linear warm-up over 2 epochs of 4 steps: the first step runs at 0.05 · 1/8.
    schedule = create_schedule("constant", lr=0.05, epochs=4, steps_per_epoch=4, warmup_epochs=2)
    stepper = LRStepper(optimizer, schedule, steps_per_epoch=4)
    x, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    nn.functional.cross_entropy(model(x), y).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    stepper.step()
    optimizer.step()
    lr = 0.05 * (1 / 4) / 2  # warm-up: t = 1 step = 1/4 epoch, of w = 2 epochs
    assert stepper.last_lr == pytest.approx(lr)
    for name, p in model.named_parameters():
        step = lr * (10.0 if name.startswith("head.") else 1.0)
        torch.testing.assert_close(p.detach(), before[name] - step * grads[name], msg=name)


def test_head_groups_keep_the_weight_decay_rules() -> None:
    model = create_model("mlp", in_shape=(4,), n_outputs=3, hidden=5, depth=1, **_MLP)
    head = {id(p) for n, p in model.named_parameters() if n.startswith("head.")}
    groups = param_groups(model, weight_decay=0.2, head=head, lr_head_mult=0.5)
    shapes = [
        (g["lr_mult"], g["weight_decay"], [tuple(p.shape) for p in g["params"]]) for g in groups
    ]
    assert shapes == [
        (1.0, 0.2, [(5, 4)]),
        (1.0, 0.0, [(5,)]),
        (0.5, 0.2, [(3, 5)]),
        (0.5, 0.0, [(3,)]),
    ]
    # Without weight decay, one group per lr: nothing to tell weights and biases apart for.
    groups = param_groups(model, weight_decay=0.0, head=head, lr_head_mult=0.5)
    assert [(g["lr_mult"], len(g["params"])) for g in groups] == [(1.0, 2), (0.5, 2)]


def test_the_head_of_a_user_model_is_head_else_the_last_linear() -> None:
    class Named(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(3, 2)
            self.tail = nn.Linear(2, 2)  # registered after, still not the head

    plain = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.Softmax(-1))
    named = Named()
    assert head_module(named) is named.head
    assert head_module(plain) is plain[2]
    assert head_module(nn.Sequential(nn.Conv1d(1, 1, 3))) is None


def test_partial_load_copies_matches_exactly_and_keeps_the_rest_fresh() -> None:
    torch.manual_seed(0)
    source = create_model("mlp", in_shape=(64,), n_outputs=5, hidden=16, depth=2, **_MLP)
    torch.manual_seed(1)
    target = create_model("mlp", in_shape=(64,), n_outputs=10, hidden=16, depth=2, **_MLP)
    fresh = {n: t.clone() for n, t in target.state_dict().items()}
    stored = source.state_dict()
    report = load_matching(target, {**stored, "unused.weight": torch.zeros(2)})
    assert report.fresh == ("head.weight", "head.bias")  # 5 classes there, 10 here
    after = target.state_dict()
    for name in report.loaded:
        assert torch.equal(after[name], stored[name]), name
    for name in report.fresh:
        assert torch.equal(after[name], fresh[name]), name
    assert len(report.loaded) == 4


# --- bad input: each class gives an error naming its field -----------------------------------


def test_a_missing_weights_file_is_refused_at_load(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(ConfigError) as info:
        build_config({"init_from": str(missing)})
    assert "no such weights file" in _errors(info.value)["init_from"]
    reason = validate_value("init_from", str(missing))
    assert reason is not None and "no such weights file" in reason


def test_a_spec_naming_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    spec = {
        "name": "ft",
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "trainable": {"dataset": "digits", "model": "mlp"},
        "budget": {"trials": 2, "max_epochs": 2},
        "space": {"lr": {"loguniform": [1e-4, 1e-2]}},
        "fixed": {"init_from": str(tmp_path / "nope.pt"), "lr_head_mult": 0},
    }
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    errors = {e.path: e.message for e in info.value.errors}
    assert "no such weights file" in errors["fixed.init_from"]
    assert errors["fixed.lr_head_mult"] in ("must be > 0", "must be > 0.0")


@pytest.mark.parametrize("value", [0, -1.0, 0.0])
def test_lr_head_mult_must_be_positive(value: float) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"lr_head_mult": value})
    assert _errors(info.value)["lr_head_mult"] in ("must be > 0", "must be > 0.0")


def test_a_file_that_is_not_torch_weights_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    with pytest.raises(ConfigError) as info:
        train({**SMALL, "epochs": 1, "init_from": str(text)})
    assert "is not a torch weights file" in _errors(info.value)["init_from"]


@pytest.mark.parametrize(
    "content", [[1, 2, 3], {"lr": 0.1}, {"state_dict": {"w": [1.0]}}, {}], ids=repr
)
def test_a_file_without_a_state_dict_is_refused(tmp_path: Path, content: object) -> None:
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(ConfigError) as info:
        train({**SMALL, "epochs": 1, "init_from": str(path)})
    assert "holds no state_dict" in _errors(info.value)["init_from"]


def test_weights_of_another_model_that_match_nothing_are_refused(tmp_path: Path) -> None:
    cnn = create_model(
        "cnn", in_shape=(1, 8, 8), n_outputs=10, channels=4, depth=1, activation="relu",
        dropout=0.0, norm="none",
    )  # fmt: skip
    path = tmp_path / "cnn.pt"
    torch.save({"features.0.weight": cnn.state_dict()["features.0.weight"]}, path)
    with pytest.raises(ConfigError) as info:
        train({**SMALL, "epochs": 1, "init_from": str(path)})
    assert "no stored weight matches the model" in _errors(info.value)["init_from"]


@pytest.mark.parametrize("prefix", ["encoder", "block", "blocks.9", "head.w"])
def test_a_freeze_prefix_matching_no_parameter_is_named(prefix: str) -> None:
    with pytest.raises(ConfigError) as info:
        train({**SMALL, "epochs": 1, "freeze": ["head", prefix]})
    assert _errors(info.value) == {
        "freeze": f"{prefix!r} matches no parameter of the model (top-level: blocks, head)"
    }


def test_freezing_everything_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        train({**SMALL, "epochs": 1, "freeze": ["blocks", "head"]})
    assert "nothing is left to train" in _errors(info.value)["freeze"]


@pytest.mark.parametrize("prefix", ["", " head", "head.", ".head"])
def test_a_malformed_freeze_prefix_is_refused_at_load(prefix: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"freeze": [prefix]})
    assert "is not a parameter name prefix" in _errors(info.value)["freeze.0"]


def test_a_trial_reference_is_parsed_at_load_and_a_missing_one_named(tmp_path: Path) -> None:
    assert parse_init_from("3/17") == TrialWeights(3, 17)
    assert parse_init_from("./3/17") == Path("3/17")  # a file of that shape
    build_config({"init_from": "3/17"})  # well-formed: accepted at load
    with pytest.raises(ConfigError) as info:
        build_config({"init_from": "0/4"})
    assert "start at 1" in _errors(info.value)["init_from"]
    absent = tmp_path / "absent.db"
    with pytest.raises(LookupError, match="not available: no stored weights for trial 3/17"):
        resolve_init_from("3/17", f"sqlite:///{absent}")
    assert not absent.exists()  # looking did not create a database
    with pytest.raises(ConfigError) as info:
        train({**SMALL, "epochs": 1, "init_from": "3/17"}, database_url=f"sqlite:///{absent}")
    assert _errors(info.value)["init_from"].startswith(
        "not available: no stored weights for trial 3/17 (no database file"
    )


def test_the_core_trains_the_head_at_its_own_lr(pretrained: tuple[Path, Path]) -> None:
    stored = torch.load(pretrained[1], weights_only=True)
    config = {**SMALL, "epochs": 1, "optimizer": "sgd", "lr": 0.1, "lr_head_mult": 1e-9}
    result = train({**config, "init_from": str(pretrained[1])})
    assert result.model is not None
    after = result.model.state_dict()
    # SGD moves the head by lr · 1e-9 · Σ grad per step: nothing a float32 head shows.
    torch.testing.assert_close(after["head.weight"], stored["head.weight"], rtol=0, atol=1e-6)
    assert (after["blocks.1.0.weight"] - stored["blocks.1.0.weight"]).abs().max() > 1e-4
