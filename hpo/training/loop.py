"""The one training loop: set up, then for each epoch train, evaluate, report, decide.

`train(config, report)` runs ``config.epochs`` epochs (the trial's full budget, which the
LR schedule spans) and calls ``report(metrics)`` once per epoch with:

- ``epoch`` (1-based), ``train_loss`` (mean data loss over the epoch's batches, without
  the L1 term), ``val_loss`` (cross-entropy without label smoothing, or MSE),
- ``val_accuracy`` (classification) or ``val_rmse`` (regression),
- ``lr`` (the lr of the epoch's last optimizer step) and ``seconds`` (the epoch's wall time),
- ``train_seconds`` (the seconds of every epoch so far) and ``param_count`` (the model's
  parameters), what the trial costs.

The first report also carries provenance, identical for every trial of a study:
``hpo_data_seed`` (the `data_seed` that drew the split) and ``hpo_split_hash`` (see
`Splits.split_hash`). The executor moves ``hpo_*`` keys into the trial's provenance.

Fine-tuning (`init_from`, `freeze`, `lr_head_mult`) is applied right after the model is
initialized, by `hpo.training.finetune`; `amp: fp16` on CUDA scales the loss (see
`hpo.training.device`).

It stops early when early stopping says so or when the training loss is no longer finite
(nothing can recover from NaN weights). The loop knows nothing about Ray: the executor
passes `report`. It seeds torch's global RNG with `seed` (dropout draws from it), so run
it in the trial's own process. Seeded CPU runs are bit-reproducible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hpo.training import checkpoint as ckpt
from hpo.training import finetune
from hpo.training.config import (
    IMAGE_AUGMENTATIONS,
    METRICS_CLASSIFICATION,
    METRICS_REGRESSION,
    SEQUENCE_MODELS,
    ConfigError,
    TrainConfig,
    build_config,
    metric_mode,
)
from hpo.training.data import Dataset, load_dataset, split
from hpo.training.device import autocast_for, grad_scaler_for, resolve_device
from hpo.training.init import create_initializer
from hpo.training.models import build_model
from hpo.training.optimizers import create_optimizer, param_groups
from hpo.training.preprocessing import fit_preprocessor
from hpo.training.regularization import (
    Augmenter,
    EarlyStopping,
    Mixup,
    clip_gradients,
    l1_penalty,
    l1_weights,
)
from hpo.training.schedules import LRStepper, create_schedule, scaled_lr

Report = Callable[[dict[str, Any]], None]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

EVAL_BATCH = 4096  # evaluation holds no activations for backward: go wide


@dataclass
class TrainResult:
    """What a run produced: every epoch's metrics, the delivered model's, and how it ended.

    `best` is the epoch with the best value of the watched metric (`keep_best`'s metric,
    else `early_stopping_metric`; min or max per its mode; ties go to the earlier epoch;
    non-finite values never win), whether or not its weights were kept. `delivered` is
    the metrics of the model `train` returns: the best epoch's with `keep_best`, else the
    last epoch's (`final`). `test` holds the delivered model's test metrics (``test_loss``
    and ``test_accuracy`` or ``test_rmse``), empty without `test_fraction`.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    device: str = "cpu"
    data_seed: int = 0
    split_hash: str = ""
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def epochs_run(self) -> int:
        """Epochs trained (fewer than `epochs` when stopped early)."""
        return len(self.history)

    @property
    def best_epoch(self) -> int:
        """The 1-based epoch of `best`."""
        return int(self.best["epoch"])


@dataclass
class Session:
    """Everything one epoch of training needs, assembled once by `train`.

    Optional features are None when off so `train_one_epoch` skips their code entirely.
    With augmentation, `train_x` stays in pixel space and `transform` (the fitted
    preprocessing) runs on each augmented batch; otherwise `train_x` is preprocessed
    once and `transform` is None.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    stepper: LRStepper
    loss_fn: LossFn
    train_x: torch.Tensor
    train_y: torch.Tensor
    plan: list[list[tuple[int, int]]]
    generator: torch.Generator
    autocast: Callable[[], AbstractContextManager[object]]
    report_loss: LossFn | None = None
    augment: Augmenter | None = None
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    l1: tuple[list[torch.Tensor], float] | None = None
    clip: tuple[float, float] | None = None
    mixup: Mixup | None = None
    scaler: torch.amp.GradScaler | None = None


def batch_plan(n: int, batch_size: int, accum_steps: int) -> list[list[tuple[int, int]]]:
    """The optimizer steps of one epoch over `n` (permuted) rows, each a list of up to
    `accum_steps` micro-batches ``(lo, hi)`` of `batch_size` rows.

    A last micro-batch of a single row is merged into the one before it: BatchNorm
    cannot normalize one sample, and a one-sample step is mostly noise.
    """
    bounds = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return [bounds[i : i + accum_steps] for i in range(0, len(bounds), accum_steps)]


def train_one_epoch(s: Session) -> torch.Tensor:
    """One pass over a fresh permutation of the training set; returns the mean reported
    loss (without label smoothing) as a 0-d tensor, not synced: the caller reads it once
    per epoch.

    Each optimizer step covers the micro-batches of one `plan` entry; each micro-batch's
    loss is weighted by its share of the step's samples, so accumulated gradients equal
    those of one big batch.
    """
    s.model.train()
    n = s.train_x.shape[0]
    perm = torch.randperm(n, device=s.train_x.device, generator=s.generator)
    # Kept as tensors and reduced once at the end: an .item() per step would be a CPU-GPU
    # sync point, and even an in-place add per step costs a kernel launch.
    losses: list[torch.Tensor] = []
    sizes: list[int] = []
    for step in s.plan:
        step_samples = step[-1][1] - step[0][0]
        for lo, hi in step:
            idx = perm[lo:hi]
            xb, yb = s.train_x[idx], s.train_y[idx]
            if s.augment is not None:
                xb = s.augment(xb)  # in pixel space: shifts pad with black, not with 0 = mean
            if s.transform is not None:
                xb = s.transform(xb)
            mix = None
            if s.mixup is not None:
                xb, partners, lam = s.mixup(xb, yb)
                mix = (partners, lam)
            with s.autocast():
                out = s.model(xb)
                loss = _mixed(s.loss_fn, out, yb, mix)
            shown = loss if s.report_loss is None else _mixed(s.report_loss, out.detach(), yb, mix)
            losses.append(shown.detach())
            sizes.append(hi - lo)
            if s.l1 is not None:
                loss = loss + l1_penalty(*s.l1)
            if len(step) > 1:
                loss = loss * ((hi - lo) / step_samples)
            (loss if s.scaler is None else s.scaler.scale(loss)).backward()
        if s.scaler is not None:
            s.scaler.unscale_(s.optimizer)  # clipping must see the true gradients
        if s.clip is not None:
            clip_gradients(s.model.parameters(), *s.clip)
        s.stepper.step()
        if s.scaler is None:
            s.optimizer.step()
        else:  # skips the step if a gradient overflowed, and adapts the scale
            s.scaler.step(s.optimizer)
            s.scaler.update()
        s.optimizer.zero_grad(set_to_none=True)
    weights = torch.tensor(sizes, dtype=torch.float32, device=s.train_x.device)
    return (torch.stack(losses).float() * weights).sum() / n


def _mixed(
    loss_fn: LossFn, out: torch.Tensor, y: torch.Tensor, mix: tuple[torch.Tensor, float] | None
) -> torch.Tensor:
    """loss_fn(out, y), or with mixup λ·loss_fn(out, y) + (1 − λ)·loss_fn(out, y_partner)."""
    if mix is None:
        return loss_fn(out, y)
    partners, lam = mix
    return lam * loss_fn(out, y) + (1 - lam) * loss_fn(out, partners)


def loss_functions(regression: bool, label_smoothing: float) -> tuple[LossFn, LossFn | None]:
    """(the loss training minimizes, the one it reports as `train_loss` when different).

    Label smoothing changes only what is minimized: the reported `train_loss` is the
    plain cross-entropy, comparable with `val_loss`. Regression minimizes and reports MSE.
    """
    if regression:
        return _regression_loss, None
    if label_smoothing > 0:
        return partial(F.cross_entropy, label_smoothing=label_smoothing), F.cross_entropy
    return F.cross_entropy, None


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    regression: bool,
    autocast: Callable[[], AbstractContextManager[object]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(val_loss, val_accuracy or val_rmse) as 0-d tensors, in wide batches, unsynced."""
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    hits = torch.zeros((), device=x.device)
    for lo in range(0, x.shape[0], EVAL_BATCH):
        xb, yb = x[lo : lo + EVAL_BATCH], y[lo : lo + EVAL_BATCH]
        with autocast():
            out = model(xb)
        out = out.float()
        if regression:
            loss_sum += F.mse_loss(out.squeeze(-1), yb, reduction="sum")
        else:
            loss_sum += F.cross_entropy(out, yb, reduction="sum")
            hits += (out.argmax(-1) == yb).sum()
    val_loss = loss_sum / x.shape[0]
    return val_loss, (val_loss.sqrt() if regression else hits / x.shape[0])


def _regression_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out.squeeze(-1), y)


def _load_checked(cfg: TrainConfig) -> Dataset:
    """The config's dataset, or a `ConfigError` for what only shows once it is loaded (a
    user dataset's task and shape): every error here comes from a config value."""
    try:
        dataset = load_dataset(cfg)
    except (ValueError, ImportError) as exc:
        raise ConfigError([("dataset", f"{cfg.dataset!r}: {exc}")]) from None
    problems = []
    allowed = METRICS_REGRESSION if dataset.task == "regression" else METRICS_CLASSIFICATION
    if cfg.early_stopping_metric not in allowed:
        problems.append(
            (
                "early_stopping_metric",
                f"must be one of {', '.join(allowed)} for a {dataset.task} dataset",
            )
        )
    shape = tuple(dataset.x.shape[1:])
    if cfg.model in SEQUENCE_MODELS and not dataset.is_sequence_or_image:
        problems.append(
            ("model", f"'{cfg.model}' needs sequence (T, F) or image inputs, got {shape}")
        )
    if not dataset.is_image:
        if cfg.model == "cnn":
            problems.append(("model", f"'cnn' needs image inputs (C, H, W), got {shape}"))
        for name in IMAGE_AUGMENTATIONS:
            if getattr(cfg, name):
                problems.append((name, f"needs an image dataset, got samples of shape {shape}"))
    if problems:
        raise ConfigError(problems)
    return dataset


def train(
    config: Mapping[str, object] | TrainConfig,
    report: Report | None = None,
    *,
    keep_best: tuple[str, Literal["min", "max"]] | None = None,
    checkpoint: ckpt.Checkpointer | None = None,
    database_url: str | None = None,
) -> TrainResult:
    """Train one model as `config` says, calling `report` once per epoch; see the module doc.

    With ``keep_best=(metric, mode)`` the weights (and normalization statistics) of the
    epoch with the best `metric` are kept and restored at the end, so the delivered model
    has exactly that epoch's value; otherwise the model of the last epoch is delivered.

    With `checkpoint`, the run starts from ``checkpoint.load()`` when that gives a state
    (the epochs after it are reported; earlier ones are in `history`), and saves its
    whole state after every ``checkpoint.every``-th epoch (``"auto"``: as often as 5% of
    the training time allows) and after its last one (see `hpo.training.checkpoint`).

    `database_url` is the database an ``init_from: STUDY/NUMBER`` is looked up in (None:
    ``HPO_DATABASE_URL``; see `hpo.training.pretrained`).

    Raises `ConfigError` (a `ValueError` naming each field) for an invalid config, also
    for one that only turns out wrong once the data is loaded (a cnn on tabular user data).
    """
    cfg = config if isinstance(config, TrainConfig) else build_config(config)
    try:
        device = resolve_device(cfg.device)
    except ValueError as exc:
        raise ConfigError([("device", str(exc))]) from None
    autocast = autocast_for(cfg.amp, device)
    torch.manual_seed(cfg.seed)

    # --- data: split, preprocess on the training split, move to the device once ---
    dataset = _load_checked(cfg)
    regression = dataset.task == "regression"
    metric_names = METRICS_REGRESSION if regression else METRICS_CLASSIFICATION
    watched, mode = keep_best or (cfg.early_stopping_metric, metric_mode(cfg.early_stopping_metric))
    if watched not in metric_names:
        raise ConfigError([("keep_best", f"must name one of {', '.join(metric_names)}")])
    splits = split(dataset, cfg.val_fraction, cfg.data_seed, cfg.test_fraction)
    transform = fit_preprocessor(cfg.preprocess, splits.train_x.to(device), cfg.whiten_eps)
    augment = Augmenter(
        flip=cfg.augment_flip,
        vflip=cfg.augment_vflip,
        zoom=cfg.augment_zoom,
        shift=cfg.augment_shift,
        rotate=cfg.augment_rotate,
        cutout=cfg.augment_cutout,
        noise=cfg.augment_noise,
        generator=torch.Generator(device=device).manual_seed(cfg.seed),
    )
    # Augmentation works on pixels, so with it the training set stays raw and each
    # augmented batch is preprocessed; without it, preprocess once.
    train_x = splits.train_x.to(device)
    if not augment.active:
        train_x = transform(train_x)
    val_x = transform(splits.val_x.to(device))
    train_y, val_y = splits.train_y.to(device), splits.val_y.to(device)

    # --- model, optimizer, schedule ---
    params = cfg.model_dump()  # with a user model or dataset, extra names too
    try:
        model = build_model(params, tuple(train_x.shape[1:]), dataset.n_outputs).to(device)
    except (ValueError, ImportError) as exc:
        raise ConfigError([("model", f"{cfg.model!r}: {exc}")]) from None
    create_initializer(
        cfg.init, init_std=cfg.init_std, init_range=cfg.init_range, activation=cfg.activation
    )(model)
    finetune.start_from(model, cfg.init_from, cfg.freeze, database_url)  # stored weights, frozen
    # Scaled for the samples behind one optimizer step, accumulation included.
    effective_batch = cfg.batch_size * cfg.grad_accum_steps
    lr = scaled_lr(cfg.lr, effective_batch, cfg.base_batch_size, cfg.lr_scaling)
    optimizer = create_optimizer(
        cfg.optimizer,
        param_groups(
            model,
            weight_decay=cfg.weight_decay,
            decay_norm_and_bias=cfg.decay_norm_and_bias,
            head=finetune.head_parameters(model) if cfg.lr_head_mult != 1 else (),
            lr_head_mult=cfg.lr_head_mult,
        ),
        lr=lr,
        momentum=cfg.momentum,
        beta1=cfg.beta1,
        beta2=cfg.beta2,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )
    plan = batch_plan(train_x.shape[0], cfg.batch_size, cfg.grad_accum_steps)
    steps_per_epoch = len(plan)
    schedule = create_schedule(
        cfg.schedule, steps_per_epoch=steps_per_epoch, **{**params, "lr": lr}
    )
    loss_fn, report_loss = loss_functions(regression, cfg.label_smoothing)
    session = Session(
        model=model,
        optimizer=optimizer,
        stepper=LRStepper(optimizer, schedule, steps_per_epoch),
        loss_fn=loss_fn,
        report_loss=report_loss,
        train_x=train_x,
        train_y=train_y,
        plan=plan,
        generator=augment.generator,
        autocast=autocast,
        augment=augment if augment.active else None,
        transform=transform if augment.active else None,
        l1=([w for w in l1_weights(model) if w.requires_grad], cfg.l1) if cfg.l1 > 0 else None,
        mixup=(
            Mixup(cfg.mixup_alpha, augment.generator, np.random.default_rng(cfg.seed))
            if cfg.mixup_alpha > 0
            else None
        ),
        clip=(
            (cfg.grad_clip_norm, cfg.grad_clip_value)
            if cfg.grad_clip_norm > 0 or cfg.grad_clip_value > 0
            else None
        ),
        scaler=grad_scaler_for(cfg.amp, device),
    )
    sign = 1.0 if mode == "min" else -1.0
    stopper = EarlyStopping(
        cfg.early_stopping_patience,
        cfg.early_stopping_min_delta,
        metric_mode(cfg.early_stopping_metric),
    )
    result = TrainResult(
        device=str(device), model=model, data_seed=cfg.data_seed, split_hash=splits.split_hash
    )
    provenance = {"hpo_data_seed": cfg.data_seed, "hpo_split_hash": splits.split_hash}
    kept: dict[str, torch.Tensor] | None = None
    # What the trial costs, for multi-objective studies: the model's size, and training
    # time summed over epochs (evaluation included, start-up not).
    param_count = sum(p.numel() for p in model.parameters())
    train_seconds = 0.0

    first = 1
    start = checkpoint.load() if checkpoint is not None else None
    if start is not None:
        ckpt.restore(session, stopper, start)
        first = int(start["epoch"]) + 1
        result.history = [dict(h) for h in start["history"]]
        result.best = dict(start["best"])
        kept = start["kept"] if keep_best is not None else None
        # The time already spent counts: a resumed trial's cost is its whole training.
        if result.history:
            train_seconds = float(result.history[-1].get("train_seconds", 0.0))
    saves = ckpt.SaveSchedule(checkpoint.every if checkpoint is not None else 0)

    # --- the epochs ---
    for epoch in range(first, cfg.epochs + 1):
        started = time.perf_counter()
        train_loss = train_one_epoch(session)
        val_loss, val_metric = evaluate(model, val_x, val_y, regression, autocast)
        # The epoch's one CPU-GPU sync point.
        values = torch.stack([train_loss, val_loss, val_metric.float()]).tolist()
        metrics = {"epoch": epoch, **dict(zip(metric_names, values, strict=True))}
        metrics["lr"] = session.stepper.last_lr
        metrics["seconds"] = time.perf_counter() - started
        train_seconds += metrics["seconds"]
        metrics["train_seconds"] = train_seconds
        metrics["param_count"] = param_count
        result.history.append(metrics)

        session.stepper.end_epoch(metrics["val_loss"])
        value = metrics[watched]
        improved = math.isfinite(value) and (
            not result.best or sign * value < sign * result.best[watched]
        )
        if improved:
            result.best = metrics
            if keep_best is not None:
                # A copy, not a view: the next optimizer step would overwrite it.
                kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
        stop = stopper.update(metrics[cfg.early_stopping_metric]) or not math.isfinite(
            metrics["train_loss"]
        )
        # Saved before the report: a scheduler may end the trial at its report, and the
        # state a report announces must already exist.
        due = saves.due(epoch, metrics["seconds"])
        if checkpoint is not None and saves.enabled and (due or stop or epoch == cfg.epochs):
            saving = time.perf_counter()
            state = ckpt.capture(
                session,
                stopper,
                epoch=epoch,
                history=result.history,
                best=result.best,
                kept=kept,
                config=params,
            )
            checkpoint.save(state, epoch=epoch, best=improved)
            saves.saved(time.perf_counter() - saving)
        if report is not None:
            report({**metrics, **provenance} if epoch == 1 else metrics)
        if stop:
            result.stopped_early = epoch < cfg.epochs
            break

    result.final = result.history[-1]
    result.best = result.best or result.final
    result.delivered = result.final
    if kept is not None:
        model.load_state_dict(kept)
        result.delivered = result.best
    if splits.test_x.shape[0] > 0:
        test_x = transform(splits.test_x.to(device))
        test_loss, test_metric = evaluate(
            model, test_x, splits.test_y.to(device), regression, autocast
        )
        name = "test_rmse" if regression else "test_accuracy"
        result.test = {"test_loss": float(test_loss), name: float(test_metric)}
    return result
