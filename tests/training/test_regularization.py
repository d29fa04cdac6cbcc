"""L1, clipping, early stopping, accumulation and augmentation against their definitions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hpo.training.loop import train
from hpo.training.regularization import (
    Augmenter,
    EarlyStopping,
    affine,
    clip_gradients,
    l1_penalty,
    l1_weights,
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
    [{"flip": True}, {"shift": 2}, {"rotate": 20.0}, {"noise": 0.1}],
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
