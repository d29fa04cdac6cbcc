"""The vocabulary of hyperparameters the training core understands.

`TrainConfig` is the one place a hyperparameter is named, typed, bounded and given its
default; everything else in `hpo.training` reads a validated `TrainConfig` and trusts it.
This module must not import torch: the spec loader imports it on every CLI call to check a
search space against the vocabulary, and that has to stay fast.

Example::

    >>> cfg = build_config({"optimizer": "sgd", "lr": 0.1})
    >>> cfg.epochs
    20
    >>> validate_value("optimizer", "lion")
    'must be one of sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

Task = Literal["classification", "regression"]


class ConfigError(ValueError):
    """Hyperparameter values the core refuses; each problem names its field.

    `problems` lists every ``(field, reason)`` found; `field` and `reason` are the first
    one's. ``str()`` gives one ``field: reason`` line per problem, ready for a CLI to
    print (exit status 2) or an API to return (422).

        >>> str(ConfigError([("warmup_epochs", "must be < epochs (5)")]))
        'warmup_epochs: must be < epochs (5)'
    """

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems: list[tuple[str, str]] = list(dict.fromkeys(problems))
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        self.field, self.reason = self.problems[0]
        super().__init__("\n".join(f"{f}: {r}" if f else r for f, r in self.problems))


#: Built-in datasets and their task; a name not listed here is a user dataset
#: ``"pkg.module:function"`` whose task is only known once it is loaded.
BUILTIN_DATASETS: dict[str, Task] = {
    "digits": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "synthetic_classification": "classification",
    "synthetic_regression": "regression",
    "adding": "regression",
}
#: Built-in datasets whose samples are images (N, C, H, W), the only ones a `cnn` accepts.
IMAGE_DATASETS: frozenset[str] = frozenset({"digits"})
#: Built-in datasets whose samples are sequences (N, T, F).
SEQUENCE_DATASETS: frozenset[str] = frozenset({"adding"})
#: Augmentations that only make sense on images.
IMAGE_AUGMENTATIONS: tuple[str, ...] = (
    "augment_flip",
    "augment_vflip",
    "augment_zoom",
    "augment_shift",
    "augment_rotate",
    "augment_cutout",
)
#: Built-in models; any other `model` is a user ``"pkg.module:build"``.
BUILTIN_MODELS: tuple[str, ...] = ("mlp", "cnn", "rnn", "transformer")
#: Models that read their input as a sequence: (T, F) samples, or images as H rows of C·W.
SEQUENCE_MODELS: frozenset[str] = frozenset({"rnn", "transformer"})

METRICS_CLASSIFICATION: tuple[str, ...] = ("train_loss", "val_loss", "val_accuracy")
METRICS_REGRESSION: tuple[str, ...] = ("train_loss", "val_loss", "val_rmse")
# What a trial costs, reported every epoch beside the learning metrics (objectives of a
# multi-objective study; never watched by early stopping): cumulative training seconds
# and the model's parameter count. Both are minimized.
METRICS_COST: tuple[str, ...] = ("train_seconds", "param_count")


def _reject_bool(value: object) -> object:
    # pydantic's lax mode reads True as 1; a boolean where a number belongs is a typo.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


Int = Annotated[int, BeforeValidator(_reject_bool)]
Float = Annotated[float, BeforeValidator(_reject_bool)]

OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
ScheduleName = Literal[
    "constant",
    "step",
    "multistep",
    "exponential",
    "inverse_time",
    "cosine",
    "cosine_restarts",
    "cyclic",
    "noam",
    "plateau",
]
NormName = Literal["none", "batch", "layer"]
InitName = Literal[
    "default",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "normal",
    "uniform",
]
PreprocessName = Literal["none", "standardize", "minmax", "pca_whiten", "zca_whiten"]
ActivationName = Literal["relu", "gelu", "tanh", "sigmoid", "leaky_relu"]
CellName = Literal["lstm", "gru", "rnn"]
NormPositionName = Literal["pre", "post"]
LrScalingName = Literal["none", "linear", "sqrt"]
AmpName = Literal["none", "bf16", "fp16"]
DeviceName = Literal["auto", "cpu", "cuda"]
MetricName = Literal["train_loss", "val_loss", "val_accuracy", "val_rmse"]


def _model_name(value: str) -> str:
    if value not in BUILTIN_MODELS and not _looks_like_import_path(value):
        raise ValueError(f"must be one of {', '.join(BUILTIN_MODELS)} or 'pkg.module:build'")
    return value


ModelName = Annotated[str, AfterValidator(_model_name)]


def _init_from(value: str) -> str:
    # The form is checked here, at load; a file's contents only once torch reads it.
    from hpo.training.pretrained import TrialWeights, parse_init_from

    source = parse_init_from(value)
    if not isinstance(source, TrialWeights) and not source.is_file():
        raise ValueError(
            f"no such weights file: {value!r} (or name a trial as STUDY/NUMBER, e.g. 3/17)"
        )
    return value


def _freeze_prefix(value: str) -> str:
    if not value or value != value.strip() or value.startswith(".") or value.endswith("."):
        raise ValueError(
            f"{value!r} is not a parameter name prefix (dotted, e.g. 'blocks.0' or 'head')"
        )
    return value


InitFrom = Annotated[str, AfterValidator(_init_from)]
FreezePrefix = Annotated[str, AfterValidator(_freeze_prefix)]


class TrainConfig(BaseModel):
    """Every hyperparameter of one training run, validated; build it with `build_config`.

    Frozen, so a config can be shared and hashed; unknown keys are refused so a misspelt
    hyperparameter fails loudly instead of silently training with the default, except
    with user code (a ``pkg.module:function`` dataset or model): then they are kept in
    `model_extra` and passed on in the config dict user code receives (the core ignores
    them).
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    # --- data and task ---
    dataset: str = Field(
        "digits",
        min_length=1,
        description="Default 'digits'. A built-in name (digits, wine, breast_cancer, "
        "synthetic_classification, synthetic_regression) or 'pkg.module:function' taking "
        "the config dict and returning (X, y) tensors; float y means regression, integer "
        "y classification. 'adding' is the adding problem (regression): sequences of "
        "`seq_len` steps of (value, marker), the target the sum of the two marked values.",
    )
    n_samples: Int = Field(
        1000,
        ge=10,
        le=1_000_000,
        description="Default 1000 (at most 1,000,000). Rows of the synthetic_* and adding "
        "datasets.",
    )
    n_features: Int = Field(
        20,
        ge=2,
        le=100_000,
        description="Default 20 (at most 100,000). Columns of the synthetic_* datasets.",
    )
    val_fraction: Float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Default 0.2. Share of samples held out for validation; the split "
        "(stratified by class for classification) is deterministic given `data_seed`.",
    )
    test_fraction: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Default 0 (none). Share of samples held out as a test split (drawn by "
        "`data_seed`) that training and validation never see; its metrics are computed "
        "once, on the delivered model, and never reported per epoch.",
    )
    seq_len: Int = Field(
        50,
        ge=2,
        le=10_000,
        description="Default 50 (at most 10,000). Time steps of each 'adding' sequence.",
    )
    model: ModelName = Field(
        "mlp",
        description="Default 'mlp'. 'cnn' only for image datasets (digits); 'rnn' and "
        "'transformer' for sequence (N, T, F) or image datasets (an image is read as H rows "
        "of C·W features); or 'pkg.module:build', called as build(config, input_shape, "
        "num_outputs) and returning a torch.nn.Module.",
    )
    epochs: Int = Field(
        20,
        ge=1,
        le=100_000,
        description="Default 20. The trial's full budget; LR schedules span exactly this many.",
    )
    batch_size: Int = Field(
        64,
        ge=1,
        le=65_536,
        description="Default 64 (at most 65,536). Samples per forward pass.",
    )
    seed: Int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="Default 0. Seeds init, shuffling, dropout and augmentation (the trial's "
        "own randomness).",
    )
    data_seed: Int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="Default 0. Seeds the train/validation/test split and the synthetic_* "
        "data; a study gives all its trials the same one (`strategy.seed` unless `fixed` "
        "sets it), so every trial is scored on the same rows.",
    )
    device: DeviceName = Field("auto", description="Default 'auto': CUDA when available, else CPU.")
    amp: AmpName = Field(
        "none",
        description="Default 'none'. 'bf16' runs forward passes under torch.autocast on CUDA; "
        "'fp16' too, in float16, with loss scaling (torch.amp.GradScaler) so small "
        "gradients do not underflow. Both are ignored (with a warning) on CPU, where "
        "they are slower than float32.",
    )

    # --- optimizer ---
    optimizer: OptimizerName = Field(
        "adam",
        description="Default 'adam'. sgd, momentum (SGD with `momentum`), nesterov, adagrad, "
        "rmsprop, adam, adamw.",
    )
    lr: Float = Field(1e-3, gt=0, description="Default 1e-3. Peak learning rate α0.")
    momentum: Float = Field(
        0.9, ge=0, lt=1, description="Default 0.9. Momentum of 'momentum' and 'nesterov'."
    )
    beta1: Float = Field(0.9, ge=0, lt=1, description="Default 0.9. Adam/AdamW β1.")
    beta2: Float = Field(
        0.999,
        ge=0,
        lt=1,
        description="Default 0.999. Adam/AdamW β2; also RMSprop's squared-gradient decay.",
    )
    eps: Float = Field(
        1e-8, gt=0, description="Default 1e-8. Denominator term of adagrad/rmsprop/adam(w)."
    )
    weight_decay: Float = Field(
        0.0,
        ge=0,
        description="Default 0. Coupled L2 (added to the gradient) for all optimizers but "
        "adamw, where it is decoupled.",
    )
    decay_norm_and_bias: bool = Field(
        False,
        description="Default false. Whether weight_decay also applies to biases and "
        "normalization parameters (by default only to weight matrices and kernels).",
    )
    l1: Float = Field(
        0.0,
        ge=0,
        description="Default 0. Adds l1·Σ|w| over weight matrices/kernels (not biases or "
        "norm parameters) to the loss.",
    )

    # --- fine-tuning ---
    init_from: InitFrom | None = Field(
        None,
        description="Default none. Weights every trial starts from: a file (a state_dict, or "
        "a dict with a 'state_dict' key) or a trial of an earlier study as STUDY/NUMBER. "
        "Parameters and buffers whose names and shapes match are loaded; the rest keep "
        "`init`.",
    )
    freeze: tuple[FreezePrefix, ...] = Field(
        (),
        description="Default []. Parameter name prefixes (dotted: 'blocks.0' covers "
        "'blocks.0.0.weight') that do not train; a prefix matching no parameter is an error.",
    )
    lr_head_mult: Float = Field(
        1.0,
        gt=0,
        description="Default 1. The head (the model's top-level 'head' module, which every "
        "built-in model has, else its last Linear) trains at lr × lr_head_mult, the rest "
        "at lr, at every step of the schedule.",
    )

    # --- learning-rate schedule ---
    lr_scaling: LrScalingName = Field(
        "none",
        description="Default 'none'. 'linear' multiplies lr by the effective batch "
        "(batch_size × grad_accum_steps) / base_batch_size, 'sqrt' by its square root, "
        "before anything else (min_lr is compared with the scaled lr).",
    )
    base_batch_size: Int = Field(
        32,
        ge=1,
        le=65_536,
        description="Default 32. The effective batch size `lr` was tuned for.",
    )
    schedule: ScheduleName = Field(
        "constant", description="Default 'constant'. See hpo.training.schedules."
    )
    warmup_epochs: Float = Field(
        0.0,
        ge=0,
        description="Default 0. Linear warm-up: at the step ending at t epochs lr = "
        "α_start·t/w; afterwards the schedule runs on t−w over a horizon epochs−w. "
        "'noam' uses it as its own warm-up.",
    )
    step_size: Float = Field(10.0, gt=0, description="Default 10. 'step': epochs between decays.")
    gamma: Float | None = Field(
        None,
        gt=0,
        description="Default per schedule: 0.1 for step, multistep and plateau; 0.95 for "
        "exponential (per epoch). Decay factor of those schedules.",
    )
    milestones: tuple[Float, ...] = Field(
        (10.0, 15.0), description="Default [10, 15]. 'multistep': epochs at which lr ×= gamma."
    )
    decay_rate: Float = Field(
        0.5, ge=0, description="Default 0.5. 'inverse_time': lr = α0/(1+decay_rate·t)."
    )
    min_lr: Float = Field(
        0.0, ge=0, description="Default 0. Floor of 'cosine' and 'cosine_restarts'."
    )
    t0: Float = Field(
        10.0, gt=0, description="Default 10. 'cosine_restarts': epochs of the first cycle."
    )
    t_mult: Float = Field(
        1.0, ge=1, description="Default 1. 'cosine_restarts': growth of each next cycle."
    )
    base_lr: Float = Field(1e-4, gt=0, description="Default 1e-4. 'cyclic': lowest lr.")
    max_lr: Float = Field(1e-2, gt=0, description="Default 1e-2. 'cyclic': highest lr.")
    cycle_epochs: Float = Field(
        4.0, gt=0, description="Default 4. 'cyclic': epochs of one full up-and-down period."
    )
    patience: Int = Field(
        5,
        ge=0,
        description="Default 5. 'plateau': epochs without a lower val_loss before lr ×= gamma.",
    )

    # --- regularization ---
    dropout: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Default 0. Dropout probability (rnn: between recurrent layers; "
        "transformer: on attention weights, sublayer outputs and embeddings).",
    )
    norm: NormName = Field(
        "none",
        description="Default 'none'. Normalization layer: none, batch or layer (rnn: after "
        "each recurrent layer; transformer: around attention and feed-forward, see "
        "norm_position).",
    )
    early_stopping_patience: Int = Field(
        0,
        ge=0,
        description="Default 0 (off). Stop after this many epochs without improvement.",
    )
    early_stopping_min_delta: Float = Field(
        0.0, ge=0, description="Default 0. Smallest change that counts as improvement."
    )
    early_stopping_metric: MetricName = Field(
        "val_loss",
        description="Default 'val_loss'. Watched metric; accuracy is maximized, others minimized.",
    )
    label_smoothing: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Default 0. Cross-entropy label smoothing of the training loss; the "
        "reported train_loss and val_loss are unsmoothed, so they compare.",
    )
    augment_flip: bool = Field(
        False, description="Default false. Random horizontal flips (images only)."
    )
    augment_shift: Int = Field(
        0, ge=0, le=64, description="Default 0. Random shifts of up to this many pixels."
    )
    augment_rotate: Float = Field(
        0.0, ge=0, le=180, description="Default 0. Random rotations of up to ± degrees."
    )
    augment_vflip: bool = Field(
        False, description="Default false. Random vertical flips (images only)."
    )
    augment_zoom: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Default 0. Random resized crop (images only): a window of s·H × s·W, "
        "s ~ U(1 − augment_zoom, 1), anywhere in the image, resized back to H × W.",
    )
    augment_cutout: Int = Field(
        0,
        ge=0,
        le=64,
        description="Default 0. Side of a square zeroed at a random centre of each image "
        "(clipped at the border; images only).",
    )
    mixup_alpha: Float = Field(
        0.0,
        ge=0,
        le=100,
        description="Default 0 (off). Mixup: train on λ·x + (1 − λ)·x' of random pairs with "
        "λ ~ Beta(α, α) per batch and the loss mixed alike; the reported train_loss is "
        "that mixed loss.",
    )
    augment_noise: Float = Field(
        0.0,
        ge=0,
        description="Default 0. Std of Gaussian noise added to inputs (in pixel space for "
        "images, before preprocessing).",
    )

    # --- gradients ---
    grad_clip_norm: Float = Field(
        0.0, ge=0, description="Default 0 (off). Clip the global gradient norm to this."
    )
    grad_clip_value: Float = Field(
        0.0, ge=0, description="Default 0 (off). Clip each gradient entry to ± this."
    )
    grad_accum_steps: Int = Field(
        1,
        ge=1,
        le=4096,
        description="Default 1. Micro-batches per optimizer step; the effective batch is "
        "batch_size × grad_accum_steps.",
    )

    # --- init and preprocessing ---
    init: InitName = Field(
        "default",
        description="Default 'default' (PyTorch's own). Others apply to every Linear and "
        "Conv weight, attention projection and recurrent input weight (per gate), set "
        "recurrent hidden-to-hidden weights orthogonal (per gate) and zero the biases; "
        "kaiming_* use the gain of `activation`.",
    )
    init_std: Float = Field(0.01, gt=0, description="Default 0.01. Std of 'normal' init.")
    init_range: Float = Field(
        0.05, gt=0, description="Default 0.05. 'uniform' init draws from [−r, r]."
    )
    preprocess: PreprocessName = Field(
        "none",
        description="Default 'none'. Fitted on the training split only, applied to every "
        "split; on images standardize and minmax are per channel, and augmentation runs "
        "in pixel space before it.",
    )
    whiten_eps: Float = Field(
        1e-5, ge=0, description="Default 1e-5. Added to each eigenvalue before whitening."
    )

    # --- model ---
    hidden: Int = Field(
        128,
        ge=1,
        le=65_536,
        description="Default 128 (at most 65,536). Width of the MLP's hidden layers; "
        "hidden state size of the rnn (per direction).",
    )
    depth: Int = Field(
        2,
        ge=1,
        le=64,
        description="Default 2 (at most 64). Hidden layers of the MLP, conv blocks of the "
        "CNN, recurrent layers of the rnn, encoder blocks of the transformer.",
    )
    activation: ActivationName = Field("relu", description="Default 'relu'.")
    residual: bool = Field(
        False, description="Default false. MLP: skip connections around equal-width layers."
    )
    channels: Int = Field(
        32, ge=1, le=4096, description="Default 32 (at most 4096). Channels of each CNN block."
    )
    cell: CellName = Field(
        "lstm", description="Default 'lstm'. rnn: the recurrent cell, lstm, gru or rnn (tanh)."
    )
    bidirectional: bool = Field(
        False, description="Default false. rnn: read each sequence in both directions."
    )
    d_model: Int = Field(
        64, ge=1, le=4096, description="Default 64 (at most 4096). transformer: token width."
    )
    heads: Int = Field(
        4,
        ge=1,
        le=64,
        description="Default 4 (at most 64). transformer: attention heads; must divide d_model.",
    )
    ff_mult: Int = Field(
        4,
        ge=1,
        le=64,
        description="Default 4 (at most 64). transformer: feed-forward width = ff_mult × d_model.",
    )
    norm_position: NormPositionName = Field(
        "pre",
        description="Default 'pre'. transformer: normalize each sublayer's input (pre, with "
        "a final norm) or the residual sum (post, the original Transformer).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        """Checks that involve several hyperparameters (never run by `validate_value`)."""
        if self.model_extra and not uses_user_code(self.__dict__):
            raise ConfigError(_unknown_names(self.model_extra))
        builtin = self.dataset in BUILTIN_DATASETS
        if not builtin and not _looks_like_import_path(self.dataset):
            raise ConfigError(
                [
                    (
                        "dataset",
                        f"must be one of {', '.join(BUILTIN_DATASETS)} or 'pkg.module:function'",
                    )
                ]
            )
        problems = cross_field_problems(self.__dict__)
        if problems:
            raise ConfigError(problems)
        return self


# --- cross-field checks ---------------------------------------------------------------------
# Each check reads only the hyperparameters it names, so the spec loader can run it on
# every combination of those few values a search space can produce (see hpo.spec) without
# enumerating the whole space.

Problem = tuple[str, str]


@dataclass(frozen=True)
class CrossCheck:
    """A check over several hyperparameters: `run(values)` lists ``(field, reason)``
    problems, reading only `fields` from `values` (each already valid on its own)."""

    fields: tuple[str, ...]
    run: Callable[[Mapping[str, Any]], list[Problem]]


def effective_lr(values: Mapping[str, Any]) -> float:
    """`lr` rescaled by `lr_scaling` for the effective batch ``batch_size × grad_accum_steps``
    (the samples behind one optimizer step) relative to `base_batch_size`."""
    ratio = values["batch_size"] * values["grad_accum_steps"] / values["base_batch_size"]
    factor = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[values["lr_scaling"]]
    return float(values["lr"]) * factor


def _warmup(v: Mapping[str, Any]) -> list[Problem]:
    if v["warmup_epochs"] >= v["epochs"]:
        return [("warmup_epochs", f"must be < epochs ({v['epochs']})")]
    return []


def _noam(v: Mapping[str, Any]) -> list[Problem]:
    if v["schedule"] == "noam" and v["warmup_epochs"] <= 0:
        return [("warmup_epochs", "schedule 'noam' needs warmup_epochs > 0")]
    return []


def _cyclic(v: Mapping[str, Any]) -> list[Problem]:
    if v["schedule"] == "cyclic" and v["max_lr"] <= v["base_lr"]:
        return [("max_lr", "schedule 'cyclic' needs max_lr > base_lr")]
    return []


def _min_lr(v: Mapping[str, Any]) -> list[Problem]:
    if v["schedule"] in ("cosine", "cosine_restarts") and v["min_lr"] >= effective_lr(v):
        scaled = "" if v["lr_scaling"] == "none" else f" (after lr_scaling: {effective_lr(v):g})"
        return [("min_lr", f"schedule '{v['schedule']}' needs min_lr < lr{scaled}")]
    return []


def _val_test(v: Mapping[str, Any]) -> list[Problem]:
    if v["val_fraction"] + v["test_fraction"] >= 1:
        return [("test_fraction", "val_fraction + test_fraction must be < 1")]
    return []


def _batch_norm(v: Mapping[str, Any]) -> list[Problem]:
    if v["norm"] == "batch" and v["batch_size"] < 2:
        return [("batch_size", "norm 'batch' needs batch_size >= 2")]
    return []


def _input_shape(v: Mapping[str, Any]) -> list[Problem]:
    dataset, model = v["dataset"], v["model"]
    if dataset not in BUILTIN_DATASETS or dataset in IMAGE_DATASETS:
        return []  # a user dataset's shape is only known once loaded
    kind = "a sequence dataset" if dataset in SEQUENCE_DATASETS else "tabular"
    problems: list[Problem] = []
    if model == "cnn":
        problems.append(("model", f"'cnn' needs an image dataset; '{dataset}' is {kind}"))
    if model in SEQUENCE_MODELS and dataset not in SEQUENCE_DATASETS:
        problems.append(
            ("model", f"'{model}' needs a sequence or image dataset; '{dataset}' is {kind}")
        )
    for name in IMAGE_AUGMENTATIONS:
        if v[name]:
            problems.append((name, f"needs an image dataset; '{dataset}' is {kind}"))
    return problems


def _heads(v: Mapping[str, Any]) -> list[Problem]:
    if v["model"] == "transformer" and v["d_model"] % v["heads"]:
        return [("heads", f"must divide d_model ({v['d_model']})")]
    return []


def _metric_for_task(v: Mapping[str, Any]) -> list[Problem]:
    regression = is_regression_dataset(v["dataset"])
    if regression is None:
        return []
    allowed = METRICS_REGRESSION if regression else METRICS_CLASSIFICATION
    if v["early_stopping_metric"] not in allowed:
        return [
            (
                "early_stopping_metric",
                f"must be one of {', '.join(allowed)} for dataset '{v['dataset']}'",
            )
        ]
    return []


CROSS_CHECKS: tuple[CrossCheck, ...] = (
    CrossCheck(("warmup_epochs", "epochs"), _warmup),
    CrossCheck(("schedule", "warmup_epochs"), _noam),
    CrossCheck(("schedule", "base_lr", "max_lr"), _cyclic),
    CrossCheck(
        (
            "schedule",
            "min_lr",
            "lr",
            "lr_scaling",
            "batch_size",
            "grad_accum_steps",
            "base_batch_size",
        ),
        _min_lr,
    ),
    CrossCheck(("val_fraction", "test_fraction"), _val_test),
    CrossCheck(("norm", "batch_size"), _batch_norm),
    CrossCheck(("dataset", "model", *IMAGE_AUGMENTATIONS), _input_shape),
    CrossCheck(("model", "d_model", "heads"), _heads),
    CrossCheck(("dataset", "early_stopping_metric"), _metric_for_task),
)


def cross_field_problems(values: Mapping[str, Any]) -> list[Problem]:
    """Every problem the cross-field checks find in a complete, field-wise valid config."""
    return [p for check in CROSS_CHECKS for p in check.run(values)]


VOCABULARY: frozenset[str] = frozenset(TrainConfig.model_fields)


def is_user_reference(value: object) -> bool:
    """Whether a `dataset` or `model` value names user code (``pkg.module:function``)
    rather than a built-in."""
    return (
        isinstance(value, str)
        and value not in BUILTIN_DATASETS
        and value not in BUILTIN_MODELS
        and _looks_like_import_path(value)
    )


def uses_user_code(values: Mapping[str, Any]) -> bool:
    """Whether a config's dataset or model is user code: then names outside the
    vocabulary are allowed and passed on to it."""
    return any(is_user_reference(values.get(name)) for name in ("dataset", "model"))


def _unknown_names(names: Iterable[str]) -> list[Problem]:
    return [
        (name, "unknown hyperparameter (names outside the vocabulary need a user model or dataset)")
        for name in names
    ]


#: Hyperparameters that take whole numbers only (a float range for them is a mistake).
INTEGER_NAMES: frozenset[str] = frozenset(
    name for name, info in TrainConfig.model_fields.items() if info.annotation is int
)


def default_value(name: str) -> Any:
    """The default of hyperparameter `name`."""
    return TrainConfig.model_fields[name].default


def _looks_like_import_path(name: str) -> bool:
    """A well-formed ``module:function`` by the one parser of them (`hpo.references`)."""
    from hpo import references

    try:
        references.parse(name)
    except references.InvalidReference:
        return False
    return True


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    # The field's own annotation and constraints, without the model's cross-field validator.
    info = TrainConfig.model_fields[name]
    annotated: Any = Annotated[info.annotation, info]  # built at runtime: opaque to mypy
    return TypeAdapter(annotated, config=ConfigDict(allow_inf_nan=False))


def _reason(error: Mapping[str, Any]) -> str:
    """Turn one pydantic error into a short reason in our own words."""
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "literal_error":
        return "must be one of " + ctx["expected"].replace("'", "").replace(" or ", ", ")
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.replace("Input should be", "must be", 1)


def validate_value(name: str, value: object) -> str | None:
    """The reason `value` is invalid for hyperparameter `name`, or None if it is valid.

    Checks the one value alone (type, range, choice); checks that need other
    hyperparameters only run in `build_config`. An unknown name gives
    ``"unknown hyperparameter"``.
    """
    if name not in VOCABULARY:
        return "unknown hyperparameter"
    try:
        _adapter(name).validate_python(value)
    except ValidationError as exc:
        return _reason(exc.errors()[0])
    return None


def build_config(values: Mapping[str, object]) -> TrainConfig:
    """Validate a flat hyperparameter mapping into a `TrainConfig`.

    Missing names take their defaults. Names outside the vocabulary are refused unless
    the dataset or model is user code, which receives them. Raises `ConfigError` listing
    every problem with its field, including the cross-field ones (e.g. cyclic needs
    max_lr > base_lr).
    """
    values = dict(values)
    # Listed here too, not only by the model's own check: that check runs only once every
    # field is valid, and a typo should show up beside the other problems.
    problems: list[Problem] = []
    if not uses_user_code(values):
        problems += _unknown_names(str(k) for k in values if k not in VOCABULARY)
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, ConfigError):
                problems += cause.problems
            else:
                field = ".".join(str(p) for p in error["loc"])
                problems.append((field, _reason(error)))
        raise ConfigError(problems) from None


def metric_mode(metric: str) -> Literal["min", "max"]:
    """Whether a larger or a smaller value of `metric` is better: accuracy is maximized."""
    return "max" if "accuracy" in metric else "min"


def is_regression_dataset(name: str) -> bool | None:
    """True/False for a built-in dataset, None for a user dataset (known once loaded)."""
    task = BUILTIN_DATASETS.get(name)
    return None if task is None else task == "regression"
