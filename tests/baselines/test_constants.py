"""Recipe constants: the defaults stay as the committed results used them, derived values follow what they
derive from (cifar10's batch size), and `--set` accepts only the recipe module's constants."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bench.baselines import cifar10, cli, generic, malaria, resnet2019

# Today's recipes, field by field (the callables aside): the committed baseline results were run with these.
DEFAULTS = {
    ("cifar10", "full"): dict(
        epochs=10, batch_size=256, peak_lr=0.375, warmup_epochs=2.3, start_lr_fraction=0.2, end_lr_fraction=0.07,
        per_epoch_decay=False, momentum=0.85, nesterov=True, weight_decay=0.0089, label_smoothing=0.2,
        alternating_flip=True, jit_compile=True, val_fraction=0.04, tta_flip=True, tta_translate=1,
        eval_batch_size=512, lookahead_every=20, lookahead_decay=0.95 ** 5, max_scale_up=4.0),
    ("malaria", "fast"): dict(
        epochs=12, batch_size=128, peak_lr=0.2, warmup_epochs=1.0, start_lr_fraction=0.0, end_lr_fraction=0.0,
        per_epoch_decay=False, momentum=0.9, nesterov=True, weight_decay=5e-4, label_smoothing=0.1,
        alternating_flip=False, jit_compile=False, val_fraction=0.1, tta_flip=True, tta_translate=0,
        eval_batch_size=512, lookahead_every=0, lookahead_decay=0.95 ** 5, max_scale_up=4.0),
    ("generic", "default"): dict(
        epochs=30, batch_size=64, peak_lr=0.1, warmup_epochs=2.0, start_lr_fraction=0.0, end_lr_fraction=0.0,
        per_epoch_decay=False, momentum=0.9, nesterov=True, weight_decay=5e-4, label_smoothing=0.1,
        alternating_flip=False, jit_compile=False, val_fraction=0.1, tta_flip=False, tta_translate=0,
        eval_batch_size=512, lookahead_every=0, lookahead_decay=0.95 ** 5, max_scale_up=4.0),
    ("resnet2019", "2019"): dict(
        epochs=50, batch_size=32, peak_lr=0.1, warmup_epochs=0.0, start_lr_fraction=0.0, end_lr_fraction=0.0,
        per_epoch_decay=True, momentum=0.9, nesterov=False, weight_decay=0.0, label_smoothing=0.0,
        alternating_flip=False, jit_compile=False, val_fraction=0.1, tta_flip=False, tta_translate=0,
        eval_batch_size=512, lookahead_every=0, lookahead_decay=0.95 ** 5, max_scale_up=4.0),
}
MODULES = {"cifar10": cifar10, "malaria": malaria, "generic": generic, "resnet2019": resnet2019}
CIFAR10_BN_MOMENTUM = 0.8801117367933934  # today's 0.6 ** (256 / 1024)


def scalars(recipe: object) -> dict[str, object]:
    """The recipe's fields that are numbers or flags."""
    return {f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe)
            if isinstance(getattr(recipe, f.name), (int, float, bool))}


def bn_momentum(recipe: object) -> float:
    """The momentum of the batch-norm layers of the recipe's network (built small: 16x16x3, 10 classes)."""
    import keras

    model = recipe.build((16, 16, 3), 10)
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert len(momenta) == 1, momenta
    return momenta.pop()


@pytest.mark.parametrize(("module", "preset"), list(DEFAULTS))
def test_default_recipes_are_unchanged(module: str, preset: str) -> None:
    recipe = MODULES[module].recipe(preset)
    assert scalars(recipe) == pytest.approx(DEFAULTS[(module, preset)], rel=1e-12)


def test_cifar10_short_differs_from_full_only_in_widths_and_epochs() -> None:
    full, short = scalars(cifar10.recipe("full")), scalars(cifar10.recipe("short"))
    assert short == pytest.approx({**full, "epochs": 5, "warmup_epochs": 0.23 * 5}, rel=1e-12)


def test_cifar10_default_bn_momentum_is_unchanged() -> None:
    assert bn_momentum(cifar10.recipe("short")) == CIFAR10_BN_MOMENTUM
    assert bn_momentum(cifar10.recipe("full")) == CIFAR10_BN_MOMENTUM


@pytest.mark.parametrize("preset", ["full", "short"])
def test_cifar10_values_derived_from_the_batch_size_follow_it(monkeypatch, preset: str) -> None:
    monkeypatch.setattr(cifar10, "BATCH_SIZE", 512)
    recipe = cifar10.recipe(preset)
    # The module's formulas: airbench's per-1024-image values kept per image.
    assert recipe.batch_size == 512
    assert recipe.peak_lr == pytest.approx(1.5 * 512 / 1024)
    assert recipe.lookahead_every == 5 * 1024 // 512
    assert bn_momentum(recipe) == pytest.approx(0.6 ** (512 / 1024))
    # The rest of the recipe is the default one.
    expected = {**DEFAULTS[("cifar10", "full")], "batch_size": 512, "peak_lr": 0.75, "lookahead_every": 10}
    if preset == "short":
        expected.update(epochs=5, warmup_epochs=0.23 * 5)
    assert scalars(recipe) == pytest.approx(expected, rel=1e-12)


def test_set_batch_size_on_the_command_line_rescales_the_cifar10_recipe(monkeypatch) -> None:
    monkeypatch.setattr(cifar10, "BATCH_SIZE", cifar10.BATCH_SIZE)  # restored after the test
    cli.set_constants(cifar10, ["BATCH_SIZE=128"])
    recipe = cifar10.recipe()
    assert (recipe.batch_size, recipe.lookahead_every) == (128, 5 * 1024 // 128)
    assert recipe.peak_lr == pytest.approx(1.5 * 128 / 1024)
    assert bn_momentum(recipe) == pytest.approx(0.6 ** (128 / 1024))


def test_with_overrides_replaces_the_batch_size_alone() -> None:
    # The harness's batch_size option: documented not to rescale the LR (nor the other derived values).
    recipe = cifar10.recipe().with_overrides(batch_size=512)
    assert recipe.batch_size == 512
    assert scalars(recipe) == pytest.approx({**DEFAULTS[("cifar10", "full")], "batch_size": 512}, rel=1e-12)
    assert bn_momentum(recipe) == CIFAR10_BN_MOMENTUM


@pytest.mark.parametrize("assignment", ["NO_SUCH_CONSTANT=1", "batch_size=512", "recipe=1", "np=1", "=3"])
def test_set_rejects_unknown_and_lowercase_names(assignment: str) -> None:
    before = dict(vars(cifar10))
    with pytest.raises(SystemExit, match=re.escape(f"--set {assignment}: ") + ".* has no constant"):
        cli.main("cifar10", cifar10.recipe, cifar10.PRESETS, "full", argv=["--set", assignment])
    assert dict(vars(cifar10)) == before


def test_the_cli_reports_every_tta_average_from_the_same_views(tmp_path) -> None:
    import json

    from tests.datasets.builders import write_cifar_folder

    folder = write_cifar_folder(tmp_path / "data")
    out = tmp_path / "run"
    result = cli.main("cifar10", cifar10.recipe, cifar10.PRESETS, "full",
                      argv=["--preset", "short", "--path", str(folder), "--epochs", "1", "--batch-size", "16",
                            "--out", str(out)])
    assert json.loads((out / "result.json").read_text()) == result
    assert result["tta_average"] == cifar10.recipe("short").tta_average
    assert set(result["test_accuracy_by_tta_average"]) == {"probabilities", "logits"}
    assert result["test_accuracy"] == result["test_accuracy_by_tta_average"][result["tta_average"]]
