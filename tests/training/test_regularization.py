"""L1, clipping, early stopping, accumulation and augmentation against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hpo.training.loop import train
from hpo.training.regularization import (
    Augmenter,
    EarlyStopping,
    Mixup,
    affine,
    clip_gradients,
    cutout,
    l1_penalty,
    l1_weights,
    zoom,
)


def test_l1_gradient_is_l1_sign_w_on_weights_only() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    l1 = 0.03
    l1_penalty(l1_weights(model), l1).backward()
    for layer in (model[0], model[2]):
        assert torch.equal(layer.weight.grad, l1 * torch.sign(layer.weight))
        assert layer.bias.grad is None
    assert model[1].weight.grad is None  # norm parameters are not penalized


def test_l1_value() -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    assert l1_penalty([w], 0.1).item() == pytest.approx(0.1 * 3.5)


def _params_with_grads() -> list[torch.Tensor]:
    torch.manual_seed(0)
    params = [nn.Parameter(torch.zeros(50)), nn.Parameter(torch.zeros(7, 3))]
    for p in params:
        p.grad = torch.randn_like(p) * 10
    return params


def test_clip_norm_bounds_the_global_norm() -> None:
    params = _params_with_grads()
    before = [p.grad.clone() for p in params]
    clip_gradients(params, max_norm=1.0, max_value=0.0)
    norm = torch.sqrt(sum((p.grad**2).sum() for p in params))
    assert norm == pytest.approx(1.0, rel=1e-4)
    # Direction is kept: every gradient is scaled by one common factor.
    ratio = params[0].grad[0] / before[0][0]
    for p, b in zip(params, before, strict=True):
        assert torch.allclose(p.grad, b * ratio)


def test_clip_value_bounds_each_entry() -> None:
    params = _params_with_grads()
    before = [p.grad.clone() for p in params]
    clip_gradients(params, max_norm=0.0, max_value=0.5)
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p.grad, b.clamp(-0.5, 0.5))


def test_early_stopping_counts_exactly_patience_epochs() -> None:
    stopper = EarlyStopping(patience=3, min_delta=0.1, mode="min")
    values = [1.0, 0.8, 0.75, 0.79, 0.71, 0.6]  # 0.75, 0.79, 0.71 are within min_delta of 0.8
    decisions = [stopper.update(v) for v in values]
    assert decisions == [False, False, False, False, True, False]


def test_early_stopping_max_mode_and_nan() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.0, mode="max")
    assert [stopper.update(v) for v in [0.5, 0.6, float("nan"), 0.6]] == [
        False,
        False,
        False,
        True,
    ]
    assert EarlyStopping(0, 0.0, "min").update(float("nan")) is False  # 0 = off


def test_training_stops_after_patience_epochs_without_improvement() -> None:
    # min_delta is far above any change a tiny lr can make: only epoch 1 counts as best.
    seen: list[dict[str, float]] = []
    result = train(
        {
            "epochs": 10,
            "hidden": 8,
            "depth": 1,
            "optimizer": "sgd",
            "lr": 1e-9,
            "early_stopping_patience": 3,
            "early_stopping_min_delta": 1.0,
        },
        report=seen.append,
    )
    assert [m["epoch"] for m in seen] == [1, 2, 3, 4]
    assert result.stopped_early and result.best["epoch"] == 1


def _weights_after(batch_size: int, accum: int) -> list[torch.Tensor]:
    result = train(
        {
            "epochs": 2,
            "hidden": 32,
            "depth": 1,
            "optimizer": "momentum",
            "lr": 0.05,
            "batch_size": batch_size,
            "grad_accum_steps": accum,
            "l1": 1e-4,
        }
    )
    assert result.model is not None
    return [p.detach().clone() for p in result.model.parameters()]


def test_accumulation_16x4_equals_batch_64() -> None:
    for a, b in zip(_weights_after(16, 4), _weights_after(64, 1), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def _augmenter(**kw: object) -> Augmenter:
    opts = {"flip": False, "shift": 0, "rotate": 0.0, "noise": 0.0, **kw}
    return Augmenter(generator=torch.Generator().manual_seed(0), **opts)  # type: ignore[arg-type]


def test_flip_gives_original_or_mirror() -> None:
    x = torch.rand(64, 1, 8, 8)
    out = _augmenter(flip=True)(x)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert torch.all(flipped | same) and flipped.any() and same.any()


def test_shift_moves_by_whole_pixels() -> None:
    x = torch.zeros(32, 1, 8, 8)
    x[:, :, 3, 4] = 1.0
    out = _augmenter(shift=2)(x)
    for img in out[:, 0]:
        ((r, c),) = (img == 1.0).nonzero().tolist()
        assert abs(r - 3) <= 2 and abs(c - 4) <= 2 and img.sum() == 1.0


def test_noise_has_the_asked_std_and_rotation_keeps_shape() -> None:
    x = torch.zeros(256, 1, 16, 16)
    assert _augmenter(noise=0.3)(x).std().item() == pytest.approx(0.3, rel=0.03)
    assert _augmenter(rotate=30.0)(torch.rand(4, 3, 8, 8)).shape == (4, 3, 8, 8)
    assert not _augmenter().active


# A known, asymmetric 5×5 image: an L in the upper left.
L_SHAPE = torch.tensor(
    [
        [0.0, 1.0, 0.0, 0.0, 0.0],
        [0.0, 2.0, 0.0, 0.0, 0.0],
        [0.0, 3.0, 4.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ]
).view(1, 1, 5, 5)


def test_rotation_by_a_quarter_turn_is_rot90() -> None:
    # The L turned counter-clockwise about the centre pixel (2, 2), written out by hand:
    # the bar's top (1) goes to the left, its foot (4) points up.
    want = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 4.0, 0.0, 0.0],
            [1.0, 2.0, 3.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    got = affine(L_SHAPE, torch.tensor([math.pi / 2]), torch.zeros(1, 2, dtype=torch.long))
    torch.testing.assert_close(got[0, 0], want, atol=1e-5, rtol=0)
    half = affine(L_SHAPE, torch.tensor([math.pi]), torch.zeros(1, 2, dtype=torch.long))
    torch.testing.assert_close(half[0, 0], L_SHAPE[0, 0].flip(0, 1), atol=1e-5, rtol=0)


def test_shift_moves_content_right_and_down_padding_with_zeros() -> None:
    got = affine(L_SHAPE, torch.zeros(1), torch.tensor([[2, 1]]), smooth=False)
    want = torch.zeros(5, 5)
    want[1:, 2:] = L_SHAPE[0, 0, :4, :3]  # everything 1 row down, 2 columns right
    torch.testing.assert_close(got[0, 0], want, atol=0, rtol=0)


def test_augmenter_shifts_are_drawn_over_the_whole_range() -> None:
    x = torch.zeros(400, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = _augmenter(shift=2)(x)
    offsets = {(r - 4, c - 4) for r, c in (out[:, 0] == 1.0).nonzero()[:, 1:].tolist()}
    assert offsets == {(dr, dc) for dr in range(-2, 3) for dc in range(-2, 3)}


def test_augmenter_rotates_within_the_asked_angle() -> None:
    # A long bar through the centre: its angle after rotation tells the drawn angle.
    x = torch.zeros(200, 1, 33, 33)
    x[:, :, 16, 4:29] = 1.0
    out = _augmenter(rotate=30.0)(x)[:, 0]
    ys, xs = torch.meshgrid(torch.arange(33.0) - 16, torch.arange(33.0) - 16, indexing="ij")
    # Principal axis of each image's mass: the bar's direction.
    m = out.flatten(1)
    sxx = (m * xs.flatten() ** 2).sum(1)
    syy = (m * ys.flatten() ** 2).sum(1)
    sxy = (m * (xs * ys).flatten()).sum(1)
    angle = torch.rad2deg(0.5 * torch.atan2(2 * sxy, sxx - syy)).abs()
    assert angle.max() <= 30.5 and angle.max() >= 25.0 and angle.mean() >= 10.0


@pytest.mark.parametrize(
    "opts",
    [
        {"flip": True},
        {"shift": 2},
        {"rotate": 20.0},
        {"noise": 0.1},
        {"vflip": True},
        {"zoom": 0.3},
        {"cutout": 3},
    ],
)
def test_augmentation_draws_only_from_its_own_generator(opts: dict) -> None:
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(1)
    a = _augmenter(**opts)(x)
    torch.manual_seed(2)  # the global RNG must not matter
    b = _augmenter(**opts)(x)
    assert torch.equal(a, b)


def test_noise_is_added_with_the_generators_normal_draws() -> None:
    x = torch.rand(4, 1, 5, 5, dtype=torch.float64)
    want = x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    torch.testing.assert_close(_augmenter(noise=0.3)(x), want, rtol=0, atol=0)


def test_one_pixel_shifts_and_small_rotations_are_applied() -> None:
    x = torch.zeros(200, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = _augmenter(shift=1)(x)
    offsets = {(r - 4, c - 4) for r, c in (out[:, 0] == 1.0).nonzero()[:, 1:].tolist()}
    assert offsets == {(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
    bar = torch.zeros(8, 1, 33, 33)
    bar[:, :, 16, 4:29] = 1.0
    assert not torch.equal(_augmenter(rotate=0.8)(bar), bar)


def test_rotations_go_both_ways() -> None:
    x = torch.zeros(200, 1, 33, 33)
    x[:, :, 16, 4:29] = 1.0
    out = _augmenter(rotate=30.0)(x)[:, 0]
    ys, xs = torch.meshgrid(torch.arange(33.0) - 16, torch.arange(33.0) - 16, indexing="ij")
    m = out.flatten(1)
    sxy = (m * (xs * ys).flatten()).sum(1)
    sxx, syy = (m * xs.flatten() ** 2).sum(1), (m * ys.flatten() ** 2).sum(1)
    angle = torch.rad2deg(0.5 * torch.atan2(2 * sxy, sxx - syy))
    assert angle.min() < -20 and angle.max() > 20


def test_rotation_resamples_bilinearly_shifts_exactly() -> None:
    ones = torch.ones(1, 1, 8, 8)
    turned = affine(ones, torch.tensor([math.pi / 4]), torch.zeros(1, 2, dtype=torch.long))
    # Bilinear: the corners cut by the turn fade out through values between 0 and 1.
    assert ((turned > 0.01) & (turned < 0.99)).any()
    nearest = affine(ones, torch.tensor([math.pi / 4]), torch.zeros(1, 2), smooth=False)
    assert set(nearest.unique().tolist()) <= {0.0, 1.0}


def test_vertical_flip_gives_original_or_upside_down() -> None:
    x = L_SHAPE.repeat(64, 1, 1, 1)
    out = _augmenter(vflip=True)(x)
    upside_down = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 3.0, 4.0, 0.0, 0.0],
            [0.0, 2.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0, 0.0],
        ]
    )
    flipped = (out[:, 0] == upside_down).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert torch.all(flipped | same) and flipped.any() and same.any()


def _ramp(n: int, size: int) -> torch.Tensor:
    """Images whose pixel (r, c) holds c: bilinear resampling reproduces it exactly."""
    return torch.arange(size, dtype=torch.float32).expand(n, 1, size, size).clone()


def test_zoom_crops_a_window_and_resizes_it_bilinearly() -> None:
    # The central half of a 16-wide ramp: output column c reads input column
    # ((0.5·(2c + 1 − 16)/16 + 1)·16 − 1)/2 = 0.5·c + 3.75.
    got = zoom(_ramp(1, 16), torch.tensor([0.5]), torch.zeros(1, 2))
    want = (0.5 * torch.arange(16.0) + 3.75).expand(16, 16)
    torch.testing.assert_close(got[0, 0], want, atol=1e-5, rtol=0)
    # The window's centre moved right by an eighth of the width (0.25 in [-1, 1] units):
    # 2 columns further.
    moved = zoom(_ramp(1, 16), torch.tensor([0.5]), torch.tensor([[0.25, 0.0]]))
    torch.testing.assert_close(moved[0, 0], want + 2, atol=1e-5, rtol=0)
    # Scale 1 with no offset leaves an image as it was.
    same = zoom(L_SHAPE, torch.ones(1), torch.zeros(1, 2))
    torch.testing.assert_close(same, L_SHAPE, atol=1e-6, rtol=0)


def test_augmenter_zoom_draws_scales_in_range_and_keeps_the_window_inside() -> None:
    out = _augmenter(zoom=0.4)(_ramp(300, 32))[:, 0, 16]  # one row of each image
    # Inside the image the ramp stays a ramp of slope s (only the outermost output
    # columns may read up to half a pixel past the last pixel centre, where it repeats).
    slopes = (out[:, 1:] - out[:, :-1])[:, 1:-1]
    scale = slopes.mean(1)
    assert torch.allclose(slopes, scale[:, None], atol=1e-4)
    assert scale.min() >= 0.6 - 1e-5 and scale.max() <= 1.0 + 1e-5
    assert scale.min() < 0.65 and scale.max() > 0.95
    assert out.min() >= -1e-5 and out.max() <= 31 + 1e-5


def test_cutout_zeroes_a_square_clipped_at_the_border() -> None:
    ones = torch.ones(2, 3, 8, 8)
    got = cutout(ones, torch.tensor([[3, 4], [0, 7]]), 3)
    want = torch.ones(2, 3, 8, 8)
    want[0, :, 2:5, 3:6] = 0.0  # rows 3 − 1 … 3 + 1, columns 4 − 1 … 4 + 1
    want[1, :, 0:2, 6:8] = 0.0  # rows −1 … 1 and columns 6 … 8, clipped
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    even = cutout(torch.ones(1, 1, 8, 8), torch.tensor([[4, 4]]), 4)
    assert torch.equal((even[0, 0] == 0).nonzero().unique(dim=0)[:, 0].unique(), torch.arange(2, 6))


def test_augmenter_cutout_holes_are_squares_of_at_most_the_size() -> None:
    out = _augmenter(cutout=3)(torch.ones(200, 1, 9, 9))[:, 0]
    sizes = set()
    for img in out:
        rows, cols = (img == 0).nonzero().unbind(1)
        assert rows.numel() > 0
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert rows.numel() == height * width  # one solid rectangle
        sizes.add((height, width))
    assert (3, 3) in sizes and max(sizes) <= (3, 3) and len(sizes) > 1


def test_mixup_mixes_pairs_with_a_beta_drawn_weight() -> None:
    x = torch.stack([L_SHAPE[0], torch.ones(1, 5, 5), torch.zeros(1, 5, 5)])
    y = torch.tensor([0, 1, 2])
    mixed, partners, lam = Mixup(0.4, torch.Generator().manual_seed(0), np.random.default_rng(0))(
        x, y
    )
    assert lam == np.random.default_rng(0).beta(0.4, 0.4)
    perm = torch.randperm(3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    assert torch.equal(partners, y[perm])


def test_mixup_loss_is_cross_entropy_against_mixed_one_hot_targets() -> None:
    from torch.nn import functional as F

    from hpo.training.loop import _mixed

    logits = torch.randn(6, 4)
    y, partners, lam = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([3, 3, 0, 1, 2, 2]), 0.3
    targets = lam * F.one_hot(y, 4) + (1 - lam) * F.one_hot(partners, 4)
    want = -(targets * logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(_mixed(F.cross_entropy, logits, y, (partners, lam)), want)


def test_new_augmentations_train_reproducibly_and_only_on_images() -> None:
    config = {
        "epochs": 2,
        "hidden": 16,
        "depth": 1,
        "augment_vflip": True,
        "augment_zoom": 0.2,
        "augment_cutout": 2,
        "mixup_alpha": 0.2,
    }
    a, b = train(config), train(config)
    assert [m["val_loss"] for m in a.history] == [m["val_loss"] for m in b.history]
    assert a.final["val_accuracy"] > 0.15  # ten classes: chance is 0.1
    assert train({**config, "mixup_alpha": 0.0}).history[0]["val_loss"] != a.history[0]["val_loss"]
    from hpo.training.config import ConfigError

    for name, value in (("augment_vflip", True), ("augment_zoom", 0.2), ("augment_cutout", 2)):
        with pytest.raises(ConfigError, match="image dataset") as info:
            train({"dataset": "wine", name: value, "epochs": 1})
        assert info.value.field == name
    # Mixup is not image-specific.
    wine = train({"dataset": "wine", "mixup_alpha": 0.2, "epochs": 1, "hidden": 8})
    assert math.isfinite(wine.final["val_loss"])
