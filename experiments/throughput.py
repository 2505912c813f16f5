"""The training-throughput study: which recipes, at which shapes and batch counts, and the yardstick each is held
against (plain `model.fit` of the same network in Keras' stock layers, and of the network with the project's
kernels). tests/baselines/test_throughput_benchmarks.py times each recipe's own training loop on these cases and
reports the ratios; run it from the repository root:

    python -m pytest tests/baselines/test_throughput_benchmarks.py --benchmark-only -m '' -s
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import NamedTuple

import keras
import numpy as np

from bench.baselines import cifar10, generic, malaria, resnet2019
from bench.baselines.training import Recipe


class ResNet20:
    """A stand-in recipe module: ResNet-20 for CIFAR-10 (3 stages x 3 basic blocks, widths 16/32/64)."""

    @staticmethod
    def build(shape: tuple[int, int, int], n_classes: int) -> keras.Model:
        layers = keras.layers
        inputs = keras.Input(shape, dtype="uint8")
        x = layers.Rescaling(1 / 255)(inputs)
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(x)))
        for stage, width in enumerate((16, 32, 64)):
            for block in range(3):
                stride = 2 if stage and not block else 1
                y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
                y = layers.ReLU()(layers.BatchNormalization()(y))
                y = layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same", use_bias=False)(y))
                if stride > 1:
                    x = layers.Conv2D(width, 1, strides=stride, use_bias=False)(x)
                x = layers.ReLU()(layers.Add()([x, y]))
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(n_classes, activation="softmax")(x))

    @staticmethod
    def recipe() -> Recipe:
        return Recipe(name="resnet20-reference", build=ResNet20.build, epochs=1, batch_size=128, peak_lr=0.1,
                      augment=cifar10.recipe().augment)


class Cifar10Short:
    """A stand-in recipe module for the cifar10 'short' preset."""

    @staticmethod
    def recipe() -> Recipe:
        return cifar10.recipe("short")


class Case(NamedTuple):
    """One recipe in the study: its module (anything with recipe() -> Recipe), the image shape and classes of its
    data, and batches per timed pass (few for the big CIFAR batches, so a pass stays a few seconds)."""

    name: str
    module: ModuleType | type
    shape: tuple[int, int, int]
    n_classes: int
    n_batches: int


# Timed passes over the batches, for the recipe's loop and for plain model.fit alike.
ROUNDS = 3
CASES = (
    Case("cifar10", cifar10, (32, 32, 3), 10, 4),
    Case("cifar10-short", Cifar10Short, (32, 32, 3), 10, 8),
    Case("resnet20-reference", ResNet20, (32, 32, 3), 10, 16),
    Case("malaria", malaria, (64, 64, 3), 2, 6),
    Case("resnet2019", resnet2019, (64, 64, 3), 2, 10),
    Case("generic-digits", generic, (8, 8, 1), 10, 20),
)


def fit_images_per_s(recipe: Recipe, shape: tuple[int, int, int], x: np.ndarray, y: np.ndarray,
                     n_classes: int) -> float:
    """What model.fit gets from the recipe's network, in the precision set now: Keras' own compile defaults
    (no XLA on a CPU), no augmentation (less work than the recipe's loop does). Inside kernels.stock() the
    network is traced with Keras' stock layers: the plain code a user would write."""
    model = recipe.build(shape, n_classes)
    if recipe.prepare is not None:
        recipe.prepare(model, x)
    model.compile(optimizer=keras.optimizers.SGD(recipe.peak_lr / 10, momentum=recipe.momentum,
                                                 nesterov=recipe.nesterov),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing))
    targets = np.eye(n_classes, dtype=np.float32)[y]
    model.fit(x, targets, batch_size=recipe.batch_size, epochs=1, verbose=0)  # compile and warm up
    # One call over all the passes, as plain code trains: fit's per-call set-up is paid once.
    t0 = time.perf_counter()
    model.fit(x, targets, batch_size=recipe.batch_size, epochs=ROUNDS, verbose=0)
    return ROUNDS * len(x) / (time.perf_counter() - t0)
