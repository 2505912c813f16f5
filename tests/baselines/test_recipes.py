"""Each recipe builds for its real input shape with a sensible size, and trains one epoch on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from bench.baselines import cifar10, generic, malaria, resnet2019
from bench.baselines.keras_support import count_params
from bench.baselines.training import train
from tests.baselines.conftest import synthetic_images


def test_cifar10_net_matches_airbench94_size() -> None:
    model = cifar10.build((32, 32, 3), 10)
    # airbench94's network has ~1.97 M parameters (tests/baselines/test_cifar10.py counts them exactly).
    assert 1.8e6 < count_params(model) < 2.2e6
    assert model.get_layer("whiten").trainable is False
    assert model.output_shape == (None, 10)


def test_cifar10_whitening_is_set_from_the_data() -> None:
    x, _ = synthetic_images(64, (32, 32, 3), 10)
    model = cifar10.build((32, 32, 3), 10)
    cifar10.whiten(model, x)
    kernel, bias = model.get_layer("whiten").get_weights()
    assert kernel.shape == (2, 2, 3, 24) and np.all(np.isfinite(kernel))
    # Filters come in +/- pairs.
    assert np.allclose(kernel[..., :12], -kernel[..., 12:], atol=1e-5)


def test_presets_and_unknown_preset() -> None:
    assert cifar10.recipe("short").epochs < cifar10.recipe("full").epochs
    with pytest.raises(ValueError, match="valid: full, short"):
        cifar10.recipe("huge")
    with pytest.raises(ValueError, match="valid: fast"):
        malaria.recipe("slow")


def _conv_widths(model: object) -> list[int]:
    """Filters of the trainable convolutions, in layer order."""
    import keras

    return [layer.filters for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D) and layer.trainable]


@pytest.mark.parametrize(("module", "shape", "widths"), [
    (generic, (8, 8, 1), (generic.STEM_WIDTH, *generic.WIDTHS[:1])),
    (malaria, (64, 64, 3), (malaria.STEM_WIDTH, *malaria.WIDTHS)),
    (cifar10, (32, 32, 3), cifar10.WIDTHS),
])
def test_width_multiplier_scales_every_stage_and_defaults_to_the_recipe(module, shape, widths) -> None:
    """The multiplier resnet-tuned searches: 1.0 builds the recipe's own widths, 0.5 halves each of them."""
    own = _conv_widths(module.build(shape, 3))
    assert own == _conv_widths(module.build(shape, 3, width_multiplier=1.0))
    assert sorted(set(own)) == sorted(set(widths))
    assert _conv_widths(module.build(shape, 3, width_multiplier=0.5)) == [w // 2 for w in own]


def test_malaria_net_is_small_and_resizes_other_sizes() -> None:
    model = malaria.build((64, 64, 3), 2)
    assert 1e5 < count_params(model) < 1e6
    assert "resize" not in [layer.name for layer in model.layers]
    assert malaria.build((50, 50, 3), 2).get_layer("resize") is not None


def test_resnet2019_has_the_2019_stage_and_filter_layout() -> None:
    model = resnet2019.build((64, 64, 3), 2)
    names = [layer.name for layer in model.layers]
    for stage, (n_modules, width) in enumerate(zip((3, 4, 6), (128, 256, 512), strict=True), start=1):
        blocks_here = sorted({n.split("_")[1] for n in names if n.startswith(f"stage{stage}_block")})
        assert len(blocks_here) == n_modules
        assert model.get_layer(f"stage{stage}_block1_conv3").filters == width
        assert model.get_layer(f"stage{stage}_block1_conv2").filters == width // 4
        assert model.get_layer(f"stage{stage}_block1_shortcut") is not None
        assert f"stage{stage}_block2_shortcut" not in names  # identity shortcuts after the first module
    assert model.get_layer("stem_conv").filters == 64
    side = {1: 64, 2: 32, 3: 16}
    for stage, expected in side.items():
        assert model.get_layer(f"stage{stage}_block1_add").output.shape[1] == expected
    assert model.get_layer("flatten").output.shape[-1] == 2 * 2 * 512
    regularised = [la for la in model.layers if getattr(la, "kernel_regularizer", None) is not None]
    assert all(float(la.kernel_regularizer.l2) == pytest.approx(5e-4) for la in regularised)
    assert len(regularised) == 1 + 3 * 13 + 3 + 1  # stem, 3 convs per module, 3 projections, dense
    rec = resnet2019.recipe()
    assert (rec.epochs, rec.batch_size, rec.peak_lr, rec.momentum, rec.nesterov) == (50, 32, 0.1, 0.9, False)
    assert rec.per_epoch_decay and rec.val_fraction == 0.1


def test_generic_depth_follows_the_input_size() -> None:
    assert generic.n_stages(8) == 1 and generic.n_stages(32) == 3 and generic.n_stages(2) == 0
    small = generic.build((8, 8, 1), 10)
    assert small.output_shape == (None, 10) and count_params(small) < 2e5
    assert generic.build((28, 28, 1), 4).output_shape == (None, 4)


@pytest.mark.parametrize(("module", "shape", "n_classes"), [
    (cifar10, (32, 32, 3), 10), (malaria, (64, 64, 3), 2),
    # ~75 s on a loaded 2-core machine: compiling the deep net with its augmentation layers.
    pytest.param(resnet2019, (64, 64, 3), 2, marks=pytest.mark.slow),
])
def test_recipe_trains_one_epoch_on_tiny_data(module, shape, n_classes, tmp_path) -> None:
    x, y = synthetic_images(12 * n_classes, shape, n_classes)
    recipe = module.recipe().with_overrides(epochs=1, batch_size=8)
    trained = train(recipe, x, y, n_classes, history_path=tmp_path / "history.csv")
    assert len(trained.history) == 1 and (tmp_path / "history.csv").exists()
    proba = trained.predict_proba(x[:5])
    assert proba.shape == (5, n_classes) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
