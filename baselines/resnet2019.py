"""The 2019 reference configuration, replicated faithfully (a pyimagesearch-style pre-activation ResNet).

Network: Rescaling(1/255) -> BN -> 3x3 conv (64) -> three stages of 3, 4 and 6 pre-activation bottleneck
modules at 128, 256 and 512 filters (the first module of each stage has a 1x1 projection shortcut; stages
2 and 3 stride by 2) -> BN-ReLU -> 8x8 average pool -> flatten -> dense -> softmax; L2 5e-4 on every
kernel. Training: SGD momentum 0.9 (no Nesterov), LR 0.1 with per-epoch polynomial (power 1) decay to 0,
50 epochs, batch 32; augmentation as 2019's ImageDataGenerator (rotation 20 degrees, zoom and shift 0.05,
horizontal flip, nearest fill) done by Keras layers inside the model. The 80/20 cell split is the data
set's job; 10% of the training part is held out for validation, as in 2019.

Run: python -m bench.baselines.resnet2019 --help
"""

from __future__ import annotations

from typing import Any

from bench.baselines import blocks
from bench.baselines.training import Recipe

IMAGE_SIZE = 64  # the 2019 input side
STAGES = (3, 4, 6)  # bottleneck modules per stage
FILTERS = (64, 128, 256, 512)  # stem conv, then each stage's output width
L2 = 5e-4  # kernel L2 penalty (coupled, in the loss), 2019's `reg`
BN_EPSILON = 2e-5  # 2019's bnEps
BN_MOMENTUM = 0.9  # 2019's bnMom
BATCH_SIZE = 32  # 2019's BS
INIT_LR = 0.1  # 2019's INIT_LR
MOMENTUM = 0.9  # plain momentum (2019: SGD(lr, momentum=0.9))
EPOCHS = 50  # 2019's NUM_EPOCHS
ROTATION_DEGREES = 20  # ImageDataGenerator rotation_range
ZOOM = 0.05  # zoom_range
SHIFT = 0.05  # width/height_shift_range
# shear_range=0.05 was in degrees in ImageDataGenerator: a 0.05-degree shear moves no pixel; omitted.
VAL_FRACTION = 0.1  # share of the training part held out for validation


def build(input_shape: tuple[int, int, int], n_classes: int) -> Any:
    """The 2019 ResNet for uint8 images (resized to 64x64 inside the model when they differ)."""
    import keras

    reg = keras.regularizers.L2(L2)
    inputs = blocks.inputs_uint8(input_shape)
    x = blocks.normalise(inputs)
    if tuple(input_shape[:2]) != (IMAGE_SIZE, IMAGE_SIZE):
        x = keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE, name="resize")(x)
    # Mild augmentation, active in training only (2019's ImageDataGenerator).
    x = keras.layers.RandomRotation(ROTATION_DEGREES / 360, fill_mode="nearest", name="aug_rotate")(x)
    x = keras.layers.RandomZoom((-ZOOM, ZOOM), fill_mode="nearest", name="aug_zoom")(x)
    x = keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="nearest", name="aug_shift")(x)
    x = keras.layers.RandomFlip("horizontal", name="aug_flip")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="input_bn")(x)
    x = keras.layers.Conv2D(FILTERS[0], 3, padding="same", use_bias=False, kernel_regularizer=reg,
                            name="stem_conv")(x)
    for stage, n_modules in enumerate(STAGES):
        strides = 1 if stage == 0 else 2
        for i in range(n_modules):
            x = blocks.preact_bottleneck(x, FILTERS[stage + 1], strides=strides if i == 0 else 1,
                                         reduce=i == 0, weight_decay=L2, bn_epsilon=BN_EPSILON,
                                         bn_momentum=BN_MOMENTUM,
                                         name=f"stage{stage + 1}_block{i + 1}")
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="final_bn")(x)
    x = keras.layers.Activation("relu", name="final_relu")(x)
    x = keras.layers.AveragePooling2D(8, name="avg_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(n_classes, kernel_regularizer=reg, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="resnet2019")


def recipe(preset: str = "2019") -> Recipe:
    """The one configuration: 2019's, unchanged."""
    if preset != "2019":
        raise ValueError(f"unknown resnet2019 preset {preset!r}; valid: 2019")
    return Recipe(
        name="resnet-2019", build=build, epochs=EPOCHS, batch_size=BATCH_SIZE, peak_lr=INIT_LR,
        warmup_epochs=0.0, per_epoch_decay=True, momentum=MOMENTUM, nesterov=False, weight_decay=0.0,
        label_smoothing=0.0, augment=None, val_fraction=VAL_FRACTION, tta_flip=False,
    )


if __name__ == "__main__":
    from bench.baselines.cli import main

    main("malaria", recipe, presets=("2019",), default_preset="2019")
