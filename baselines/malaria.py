"""Malaria cells, fast preset: a small residual net on 64x64 cells, tuned for time to >= 97% (cell split).

Network: Rescaling -> (Resizing to 64x64 if the data is another size) -> 2x2 stride-2 patch conv (cheap
early downsampling) -> three stages of [conv-pool-BN-ReLU, + a one-conv residual] at widths 32/64/128 ->
global average pool -> dense -> softmax. Training: Nesterov SGD, one linear LR cycle, label smoothing,
all 8 flips/quarter turns plus a 4-pixel translate (cells have no orientation), flip test-time augmentation.

Run: python -m bench.baselines.malaria --help
"""

from __future__ import annotations

from typing import Any

from bench.baselines import blocks
from bench.baselines.training import Recipe

IMAGE_SIZE = 64  # side the network works at; the 2019 reference used 64x64 as well
STEM_WIDTH = 32  # filters of the 2x2 stride-2 stem
WIDTHS = (32, 64, 128)  # stage widths; cells are simple, more width bought no accuracy on the subset
RESIDUAL_CONVS = 1  # conv units in each stage's residual branch
BATCH_SIZE = 128  # images per step
PEAK_LR = 0.2  # one-cycle peak (mean-reduced loss)
WARMUP_EPOCHS = 1.0  # linear warm-up length
MOMENTUM = 0.9  # Nesterov momentum
WEIGHT_DECAY = 5e-4  # decoupled decay on kernels
LABEL_SMOOTHING = 0.1  # softens the targets; two classes with some ambiguous cells
TRANSLATE = 4  # pad-and-crop pixels
VAL_FRACTION = 0.1  # stratified validation slice of the training images
EPOCHS = 12  # the fast preset's schedule

PRESETS = ("fast",)


def build(input_shape: tuple[int, int, int], n_classes: int, width_multiplier: float = 1.0) -> Any:
    """The network for uint8 cell images of input_shape (resized to IMAGE_SIZE inside the model);
    width_multiplier scales the stem's and stages' widths."""
    import keras

    inputs = blocks.inputs_uint8(input_shape)
    x = blocks.normalise(inputs)
    if tuple(input_shape[:2]) != (IMAGE_SIZE, IMAGE_SIZE):
        x = keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE, name="resize")(x)
    x = blocks.conv_bn_act(x, blocks.scaled_width(STEM_WIDTH, width_multiplier), kernel=2, strides=2, name="stem")
    for i, width in enumerate(WIDTHS):
        x = blocks.downsample_stage(x, blocks.scaled_width(width, width_multiplier), n_convs=RESIDUAL_CONVS,
                                    name=f"stage{i + 1}")
    outputs = blocks.classifier_head(x, n_classes, pool="avg")
    return keras.Model(inputs, outputs, name="malaria_fast_resnet")


def recipe(preset: str = "fast") -> Recipe:
    """The fast preset (>= 97% target on the full data set's cell split, well under 15 CPU minutes)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown malaria preset {preset!r}; valid: {', '.join(PRESETS)}")
    return Recipe(
        name=f"malaria-{preset}", build=build, epochs=EPOCHS, batch_size=BATCH_SIZE, peak_lr=PEAK_LR,
        warmup_epochs=WARMUP_EPOCHS, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY,
        label_smoothing=LABEL_SMOOTHING, augment=blocks.dihedral_and_crop(TRANSLATE),
        val_fraction=VAL_FRACTION, tta_flip=True,
    )


if __name__ == "__main__":
    from bench.baselines.cli import main

    main("malaria", recipe, presets=tuple(PRESETS), default_preset="fast")
