"""Any image set: a small residual net that adapts its depth to the input size (8x8 digits up to 64x64+).

Network: Rescaling -> (Resizing down to MAX_SIDE if larger) -> conv-BN-ReLU stem -> one stage of
[conv-pool-BN-ReLU, + a one-conv residual] per halving while the side stays >= MIN_SIDE (at most
len(WIDTHS)) -> global average pool -> dense -> softmax. Training: Nesterov SGD, one linear LR cycle,
label smoothing, translate-only augmentation (flips are not safe for every data set: digits, text).

Run: python -m bench.baselines.generic --help
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.baselines import blocks
from bench.baselines.training import Recipe

MAX_SIDE = 64  # larger images are resized down to this in the model (keeps CPU cost bounded)
MIN_SIDE = 4  # stop halving once the feature map would be smaller than this
STEM_WIDTH = 32  # filters of the stem conv
WIDTHS = (64, 128, 256)  # stage widths, one stage per halving
BATCH_SIZE = 64  # small data sets need many steps per epoch
PEAK_LR = 0.1  # one-cycle peak (mean-reduced loss)
WARMUP_EPOCHS = 2.0  # linear warm-up length
MOMENTUM = 0.9  # Nesterov momentum
WEIGHT_DECAY = 5e-4  # decoupled decay on kernels
LABEL_SMOOTHING = 0.1  # mild; helps the tiny data sets calibrate
TRANSLATE_FRACTION = 1 / 8  # pad-and-crop by this share of the side (1 pixel on 8x8)
VAL_FRACTION = 0.1  # stratified validation slice of the training images
EPOCHS = 30  # schedule length; ~10 s on 8x8 digits with 2 CPU cores

PRESETS = ("default",)


def n_stages(side: int) -> int:
    """Halvings that keep the feature map at least MIN_SIDE pixels a side (capped at len(WIDTHS))."""
    return max(0, min(len(WIDTHS), int(math.log2(max(side, 1) / MIN_SIDE))))


def build(input_shape: tuple[int, int, int], n_classes: int, width_multiplier: float = 1.0) -> Any:
    """The network for uint8 images of input_shape; width_multiplier scales the stem's and stages' widths."""
    import keras

    inputs = blocks.inputs_uint8(input_shape)
    x = blocks.normalise(inputs)
    side = min(input_shape[0], input_shape[1])
    if side > MAX_SIDE:
        scale = MAX_SIDE / side
        height, width = round(input_shape[0] * scale), round(input_shape[1] * scale)
        x = keras.layers.Resizing(height, width, name="resize")(x)
        side = MAX_SIDE
    x = blocks.conv_bn_act(x, blocks.scaled_width(STEM_WIDTH, width_multiplier), name="stem")
    for i in range(n_stages(side)):
        x = blocks.downsample_stage(x, blocks.scaled_width(WIDTHS[i], width_multiplier), n_convs=1,
                                    name=f"stage{i + 1}")
    outputs = blocks.classifier_head(x, n_classes, pool="avg")
    return keras.Model(inputs, outputs, name="generic_resnet")


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pad-and-crop by TRANSLATE_FRACTION of the images' smaller side (at least one pixel)."""
    return blocks.random_crop(x, rng, max(1, round(min(x.shape[1], x.shape[2]) * TRANSLATE_FRACTION)))


def recipe(preset: str = "default") -> Recipe:
    """The generic recipe."""
    if preset not in PRESETS:
        raise ValueError(f"unknown generic preset {preset!r}; valid: {', '.join(PRESETS)}")
    return Recipe(
        name="generic", build=build, epochs=EPOCHS, batch_size=BATCH_SIZE, peak_lr=PEAK_LR,
        warmup_epochs=WARMUP_EPOCHS, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY,
        label_smoothing=LABEL_SMOOTHING, augment=augment, val_fraction=VAL_FRACTION, tta_flip=False,
    )


if __name__ == "__main__":
    from bench.baselines.cli import main

    main("digits", recipe, presets=tuple(PRESETS), default_preset="default")
