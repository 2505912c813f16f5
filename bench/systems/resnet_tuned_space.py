"""What `resnet-tuned` searches: the hand-built recipe's own hyperparameters, in ranges around its values.

The ranges are the ones a practitioner tuning a one-cycle SGD recipe would try first, centred on the expert's
choice so that the recipe as written is one point of the space (the first trial) and every range reaches far
enough either side to correct a value that does not suit the data set in hand. keras-tuner is imported only
where the space is built.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

# Peak learning rate, log-uniform from the recipe's / LR_SPAN to x LR_SPAN: an LR range test usually finds
# the usable peak within a decade, and a factor 3 either side spans that decade around the expert's choice.
LR_SPAN = 3.0
# Decoupled weight decay, log-uniform from the recipe's / WD_SPAN to x WD_SPAN: decay is usually tuned in
# decades (1e-4 .. 1e-3 for these nets), a factor 5 either side covers one decade each way, nearly.
WD_SPAN = 5.0
# Label smoothing from 0 (none) to this, in LS_STEP steps: the recipes use 0.1-0.2, and gains from smoothing
# usually stop before 0.3; the step keeps every recipe's own value on the grid.
LS_MAX, LS_STEP = 0.3, 0.05
# Width multipliers of every stage (baselines' width_multiplier): thinner nets train more epochs in the same
# time, a wider one may pay on harder data; 1.5x already costs about 2.25x the FLOPs, so no wider.
WIDTHS = (0.5, 0.75, 1.0, 1.5)
# Batch sizes as multiples of the recipe's: half (more, noisier steps) to double (fewer, faster on a CPU). The
# LR is not rescaled with the batch: it is searched on its own, and its range covers the linear-scaling rule's
# factor 2 either way.
BATCH_FACTORS = (0.5, 1.0, 2.0)
# Names of the hyperparameters, as trials.csv and the record show them.
PEAK_LR, WEIGHT_DECAY, LABEL_SMOOTHING, WIDTH, BATCH_SIZE = (
    "peak_lr", "weight_decay", "label_smoothing", "width_multiplier", "batch_size")
# keras-tuner's Hyperband sets this one per trial: the epochs of the trial's rung (its resource).
EPOCHS = "tuner/epochs"


def batch_sizes(recipe_batch: int) -> list[int]:
    """The batch sizes searched for a recipe whose own is recipe_batch (each at least 1, no repeats)."""
    return sorted({max(1, round(recipe_batch * f)) for f in BATCH_FACTORS})


def search_space(recipe: Any) -> Any:
    """The keras_tuner.HyperParameters around baselines.training.Recipe `recipe`; every default is the recipe's
    own value, so the defaults are the recipe as written."""
    import keras_tuner

    if recipe.peak_lr <= 0 or recipe.weight_decay <= 0:
        raise ValueError(f"recipe {recipe.name!r} has no peak LR or weight decay to search around "
                         f"(peak_lr={recipe.peak_lr}, weight_decay={recipe.weight_decay}); "
                         "pick a recipe with both (cifar10, cifar10-short, malaria, generic)")
    if not 0 <= recipe.label_smoothing <= LS_MAX:
        raise ValueError(f"recipe {recipe.name!r} smooths labels by {recipe.label_smoothing}, outside the searched "
                         f"0..{LS_MAX}; widen LS_MAX in {__name__}")
    hp = keras_tuner.HyperParameters()
    hp.Float(PEAK_LR, recipe.peak_lr / LR_SPAN, recipe.peak_lr * LR_SPAN, sampling="log", default=recipe.peak_lr)
    hp.Float(WEIGHT_DECAY, recipe.weight_decay / WD_SPAN, recipe.weight_decay * WD_SPAN, sampling="log",
             default=recipe.weight_decay)
    hp.Float(LABEL_SMOOTHING, 0.0, LS_MAX, step=LS_STEP, default=recipe.label_smoothing)
    hp.Choice(WIDTH, list(WIDTHS), default=1.0)
    hp.Choice(BATCH_SIZE, batch_sizes(recipe.batch_size), default=recipe.batch_size)
    return hp


def configured(recipe: Any, values: Mapping[str, Any], epochs: int) -> Any:
    """The recipe with a trial's values and `epochs` of schedule: the same training loop, augmentation, LR
    cycle shape and test-time augmentation, only the searched numbers replaced."""
    width = float(values[WIDTH])
    return dataclasses.replace(
        recipe, name=f"{recipe.name}-tuned", epochs=int(epochs), peak_lr=float(values[PEAK_LR]),
        weight_decay=float(values[WEIGHT_DECAY]), label_smoothing=float(values[LABEL_SMOOTHING]),
        batch_size=int(values[BATCH_SIZE]),
        build=recipe.build if width == 1.0 else functools.partial(recipe.build, width_multiplier=width))


def summary(values: Mapping[str, Any]) -> str:
    """One line for trials.csv: the searched values and the rung's epochs."""
    parts = [f"{PEAK_LR}={values[PEAK_LR]:.4g}", f"{WEIGHT_DECAY}={values[WEIGHT_DECAY]:.3g}",
             f"{LABEL_SMOOTHING}={values[LABEL_SMOOTHING]:.2f}", f"{WIDTH}={values[WIDTH]:g}",
             f"{BATCH_SIZE}={values[BATCH_SIZE]}"]
    if EPOCHS in values:
        parts.append(f"epochs={values[EPOCHS]}")
    return "; ".join(parts)


def searched(values: Mapping[str, Any]) -> dict[str, Any]:
    """The searched values alone (keras-tuner's bookkeeping entries dropped), as plain numbers."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items() if not k.startswith("tuner/")}
