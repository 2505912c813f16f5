"""Augmentation, whitening, schedule and planning helpers (numpy only; no training)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from bench.baselines import blocks
from bench.baselines.training import STEP_TIME_SAFETY, Batches, plan_steps, validation_split


def test_random_crop_translates_within_pad_and_keeps_uint8() -> None:
    x = np.arange(2 * 6 * 6 * 1, dtype=np.uint8).reshape(2, 6, 6, 1)
    rng = np.random.default_rng(1)
    out = blocks.random_crop(x, rng, pad=2, mode="constant")
    assert out.shape == x.shape and out.dtype == np.uint8
    for img, src in zip(out, x, strict=True):
        padded = np.pad(src, ((2, 2), (2, 2), (0, 0)))
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if np.array_equal(padded[dy:dy + 6, dx:dx + 6], img)]
        assert hits, "each crop must be a window of the padded image"


def test_random_crop_moves_some_images() -> None:
    x = np.random.default_rng(0).integers(0, 255, (200, 8, 8, 3), dtype=np.uint8)
    out = blocks.random_crop(x, np.random.default_rng(0), pad=2)
    unmoved = sum(np.array_equal(a, b) for a, b in zip(out, x, strict=True))
    assert 0 < unmoved < 30  # 1 offset in 25 leaves an image in place: ~8 expected


def test_random_flip_mirrors_about_half() -> None:
    x = np.random.default_rng(0).integers(0, 255, (200, 4, 4, 1), dtype=np.uint8)
    out = blocks.random_flip(x, np.random.default_rng(0))
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 60 < sum(mirrored) < 140


def test_random_rot90_keeps_pixels_and_rejects_non_square() -> None:
    x = np.random.default_rng(0).integers(0, 255, (16, 5, 5, 3), dtype=np.uint8)
    out = blocks.random_rot90(x, np.random.default_rng(0))
    for o, i in zip(out, x, strict=True):
        assert any(np.array_equal(o, np.rot90(i, k)) for k in range(4))
    with pytest.raises(ValueError, match="square"):
        blocks.random_rot90(np.zeros((2, 4, 5, 1), np.uint8), np.random.default_rng(0))


def test_whitening_filters_decorrelate_patches() -> None:
    rng = np.random.default_rng(0)
    # Correlated channels: the whitened responses should have near-identity covariance.
    base = rng.normal(size=(200, 8, 8, 1)).astype(np.float32)
    images = np.concatenate([base, base * 0.9 + 0.1 * rng.normal(size=base.shape)], axis=-1)
    kernel, bias = blocks.whitening_filters(images, kernel=2, eps=1e-6)
    assert kernel.shape == (2, 2, 2, 16) and bias.shape == (16,)
    windows = np.lib.stride_tricks.sliding_window_view(images, (2, 2), axis=(1, 2))
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 8)
    responses = patches @ kernel.reshape(8, 16)[:, :8] + bias[:8]
    assert np.allclose(np.cov(responses, rowvar=False), np.eye(8), atol=0.05)
    assert np.allclose(responses.mean(axis=0), 0, atol=1e-3)


def test_linear_schedule_warms_up_then_decays() -> None:
    schedule = blocks.linear_schedule(1.0, warmup_steps=10, total_steps=110, end_fraction=0.1,
                                      start_fraction=0.2)
    lr = [float(schedule(s)) for s in (0, 5, 10, 60, 110, 500)]
    assert lr == pytest.approx([0.2, 0.6, 1.0, 0.55, 0.1, 0.1], abs=1e-6)
    stairs = blocks.linear_schedule(0.1, warmup_steps=0, total_steps=100, staircase_steps=10)
    assert float(stairs(15)) == pytest.approx(float(stairs(10))) == pytest.approx(0.09)


def test_plan_steps_fits_the_time_left() -> None:
    assert plan_steps(1000, done=10, step_seconds=1, seconds_left=None) == 1000
    big = plan_steps(5000, done=10, step_seconds=1, seconds_left=300)
    small = plan_steps(5000, done=10, step_seconds=1, seconds_left=100)
    assert small < big <= 5000
    assert (big - 10) * 1 * STEP_TIME_SAFETY <= 300 < (big - 9) * 1 * STEP_TIME_SAFETY
    assert plan_steps(5000, done=30, step_seconds=1, seconds_left=-5) == 30  # never undoes steps taken
    assert plan_steps(50, done=10, step_seconds=0.01, seconds_left=1000) == 50  # the recipe's length caps it


def test_validation_split_is_stratified_and_seeded() -> None:
    y = np.repeat([0, 1, 2, 3], 50)
    train_a, val_a = validation_split(y, 0.1, seed=3)
    train_b, val_b = validation_split(y, 0.1, seed=3)
    assert np.array_equal(val_a, val_b) and len(val_a) == 20
    assert np.bincount(y[val_a]).tolist() == [5, 5, 5, 5]
    assert not set(train_a) & set(val_a) and len(train_a) + len(val_a) == len(y)
    with pytest.raises(ValueError, match="validation slice"):
        validation_split(np.array([0, 1, 0]), 0.5, seed=0)
    with pytest.raises(ValueError, match="validation slice"):
        validation_split(y, -0.1, seed=0)
    everything, none = validation_split(y, 0, seed=0)  # airbench's way: train on all of it
    assert everything.tolist() == list(range(len(y))) and len(none) == 0


def test_batches_are_uint8_onehot_and_reproducible() -> None:
    x = np.random.default_rng(0).integers(0, 255, (50, 8, 8, 3), dtype=np.uint8)
    y = np.arange(50) % 5
    feed = Batches(x, y, 5, batch_size=16, augment=functools.partial(blocks.random_crop, pad=1),
                   seed=0)
    assert len(feed) == 3  # the partial batch is dropped
    xb, yb = feed[0]
    assert xb.dtype == np.uint8 and xb.shape == (16, 8, 8, 3)
    assert yb.dtype == np.float32 and yb.shape == (16, 5) and np.all(yb.sum(axis=1) == 1)
    assert np.array_equal(feed[0][0], xb)
    feed.set_epoch(1)
    assert not np.array_equal(feed[0][0], xb)


def test_alternating_flip_mirrors_each_image_in_every_other_epoch() -> None:
    x = np.random.default_rng(0).integers(0, 255, (64, 4, 4, 1), dtype=np.uint8)
    y = np.arange(64) % 4
    feed = Batches(x, y, 4, batch_size=64, augment=None, seed=0, alternating_flip=True)

    def mirrored(epoch: int) -> np.ndarray:
        feed.set_epoch(epoch)
        xb, yb = feed[0]
        # One batch holds every image (sorted indices): compare each with its source.
        assert np.array_equal(yb.argmax(axis=1), y)
        return np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(xb, x, strict=True)])

    first, second, third = mirrored(0), mirrored(1), mirrored(2)
    assert 16 < first.sum() < 48  # a random half starts mirrored
    assert np.array_equal(second, ~first)  # every image shows its other side next epoch
    assert np.array_equal(third, first)


def test_partial_identity_passes_the_first_channels_through() -> None:
    import keras

    conv = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype(np.float32)
    conv.build(x.shape)
    blocks.partial_identity(conv)
    out = np.asarray(conv(x))
    assert np.allclose(out[..., :4], x, atol=1e-6)  # filters 0-3 copy channels 0-3
    assert not np.allclose(out[..., 4:], 0)  # the rest keep their random init


def test_scaled_width_rounds_to_whole_simd_widths_and_keeps_the_width_at_one() -> None:
    assert blocks.scaled_width(64, 1.0) == 64
    assert blocks.scaled_width(60, 1.0) == 60  # 1.0 is the recipe as written, whatever its widths
    assert blocks.scaled_width(64, 0.5) == 32
    assert blocks.scaled_width(32, 0.75) == 24
    assert blocks.scaled_width(128, 1.5) == 192
    assert blocks.scaled_width(8, 0.25) == blocks.WIDTH_ROUNDING  # never thinner than that
    with pytest.raises(ValueError, match="must be positive"):
        blocks.scaled_width(64, 0.0)


@pytest.mark.parametrize("pad", [0, 1, 4])
def test_dihedral_and_crop_equals_flip_then_turn_then_crop(pad: int) -> None:
    """The fused per-image pass draws and moves pixels exactly as the three steps in turn."""
    x = np.random.default_rng(0).integers(0, 255, (64, 12, 12, 3), dtype=np.uint8)
    fused = blocks.dihedral_and_crop(pad)
    for seed in range(3):
        stepwise = blocks.random_crop(blocks.random_rot90(blocks.random_flip(x, rng := np.random.default_rng(seed)),
                                                          rng), rng, pad)
        np.testing.assert_array_equal(fused(x, np.random.default_rng(seed)), stepwise)
    with pytest.raises(ValueError, match="square"):
        fused(x[:, :, :10], np.random.default_rng(0))


def test_mirror_where_mirrors_only_the_selected_images() -> None:
    x = np.random.default_rng(0).integers(0, 255, (6, 4, 5, 3), dtype=np.uint8)
    selected = np.array([True, False, True, False, False, True])
    out = blocks.mirror_where(x, selected)
    np.testing.assert_array_equal(out[selected], x[selected, :, ::-1])
    np.testing.assert_array_equal(out[~selected], x[~selected])
    assert out is not x and out.dtype == np.uint8
